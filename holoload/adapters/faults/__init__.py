"""Network faults: the loopback fault proxy."""
