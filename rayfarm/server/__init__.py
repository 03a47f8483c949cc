"""HTTP layer: thin routes that validate, authenticate and call the store."""
