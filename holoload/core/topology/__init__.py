"""One normalised cluster topology and its readers, writers and diffs."""
