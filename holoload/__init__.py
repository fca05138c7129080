"""holoload: load generation, SLO gates and chaos for PostgreSQL-wire clusters."""

__version__ = "0.1.0"
