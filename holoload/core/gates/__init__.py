"""The gate language, its functions in one table, and verdicts."""
