"""Histograms, windows and per-window counts: what the aggregator keeps."""
