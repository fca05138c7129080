"""PostgreSQL wire: connections, writers, the checker's reads, partitions as shards."""
