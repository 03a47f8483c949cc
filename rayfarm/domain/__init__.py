"""Farm rules as pure code: task and frame states, frame ranges, task.json. No I/O here."""
