"""Acknowledged-write ledgers, id interval sets and the checker's findings."""
