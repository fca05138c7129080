"""Worker processes: bounded subprocesses, local child workers, Ray actors."""
