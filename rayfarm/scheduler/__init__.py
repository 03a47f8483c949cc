"""Who renders what next: the dispatch order as pure code (the store claims the rows)."""
