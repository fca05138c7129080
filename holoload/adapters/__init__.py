"""Adapters: one external system each (PostgreSQL, HTTP, subprocesses)."""
