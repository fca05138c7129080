"""The run history database: schema migrations and the store."""
