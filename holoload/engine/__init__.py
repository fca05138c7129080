"""Engine: runs a scenario against a target inside one task group."""
