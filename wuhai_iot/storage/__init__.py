"""SQLite, the single store: schema migrations, the batching writer and the read queries."""
