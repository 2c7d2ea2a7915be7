"""WinoBias items, pairing and metrics."""
