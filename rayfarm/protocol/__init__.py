"""Wire protocol of the Renderbus API: codes, envelope, signing. Pure code, no I/O."""
