"""Flight-delay explorer backend: FastAPI over an embedded DuckDB file."""

__version__ = "0.1.0"
