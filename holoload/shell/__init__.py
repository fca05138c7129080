"""Shell: command line, live display, artifact writers."""
