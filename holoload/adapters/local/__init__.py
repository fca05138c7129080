"""Servers on this machine: binaries, processes, the embedded and replicated clusters."""
