"""Database access: one DuckDB connection per process, one cursor per request, named queries."""
