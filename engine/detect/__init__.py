"""Detection: sustained, consecutive and windowed conditions over the fleet's signals."""
