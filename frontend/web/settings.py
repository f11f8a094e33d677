"""Frontend configuration, read from the environment (twelve-factor) and validated at start-up."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Only for local development; production refuses to start with it (see _check_secret_key).
DEV_SECRET_KEY = "dev-insecure-secret-key-change-me"
MIN_SECRET_KEY_LENGTH = 32


class Settings(BaseSettings):
    """All frontend settings. Environment variable names equal the upper-case field names.

    Timeouts are in seconds. Raises ``pydantic.ValidationError`` on invalid values, including
    a default or short ``SECRET_KEY`` when ``APP_ENV=production``.
    """

    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore")

    APP_ENV: Literal["development", "production", "test"] = "development"
    LOG_LEVEL: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    # json: one JSON object per stdout line (production, log shippers); console: coloured lines.
    LOG_FORMAT: Literal["json", "console"] = "json"
    # The standard OpenTelemetry variable; also the `service.name` of every log line.
    OTEL_SERVICE_NAME: str = Field(default="flights-frontend", min_length=1)
    # /metrics needs `Authorization: Bearer <METRICS_TOKEN>` when set. Production refuses to
    # start without one unless METRICS_PUBLIC=true (e.g. metrics port firewalled off).
    METRICS_TOKEN: SecretStr | None = None
    METRICS_PUBLIC: bool = False
    # false: no tracing (no spans at all), no access line, no HTTP/backend-call metrics. Logs and
    # /metrics (build info) stay. The one switch `make bench` compares (docs/performance.md).
    TELEMETRY_ENABLED: bool = True
    # Seconds a worker reuses the dashboard's backend data for the same filters (0 = never).
    # At most 1 s, so a write shows on the dashboard within a second (docs/performance.md).
    DASHBOARD_CACHE_SECONDS: float = Field(default=0.5, ge=0, le=1)
    # Commit of the running build, for app_build_info. Coolify sets SOURCE_COMMIT at runtime.
    GIT_COMMIT: str = Field(
        default_factory=lambda: os.environ.get("SOURCE_COMMIT") or "unknown", min_length=1
    )
    SECRET_KEY: str = DEV_SECRET_KEY
    BACKEND_URL: str = "http://127.0.0.1:12015"
    # Seconds. A page waits for the backend at most its budget in all (web/budget.py): the
    # read timeout while the backend answers quickly (a stalled backend costs a page about a
    # second), up to the max while it was recently slower (a busy machine, a slow route).
    BACKEND_CONNECT_TIMEOUT_SECONDS: float = Field(default=0.5, gt=0)
    BACKEND_READ_TIMEOUT_SECONDS: float = Field(default=0.8, gt=0)
    BACKEND_MAX_TIMEOUT_SECONDS: float = Field(default=5.0, gt=0)
    # Circuit breaker (web/circuit_breaker.py, per worker): this many failed calls in a row
    # open it; it stays open this long (seconds), then one trial call decides.
    BACKEND_CIRCUIT_FAILURES: int = Field(default=3, ge=1, le=1000)
    BACKEND_CIRCUIT_RESET_SECONDS: float = Field(default=2.0, gt=0, le=300)
    # /readyz must answer quickly even when the backend hangs: probes have short deadlines.
    READINESS_TIMEOUT_SECONDS: float = Field(default=1.0, gt=0)
    HOST: str = "127.0.0.1"
    PORT: int = Field(default=12016, ge=1, le=65535)
    # Number of proxies in front of us whose X-Forwarded-* headers we trust (Coolify: one).
    PROXY_FIX_COUNT: int = Field(default=1, ge=0)
    # None = Secure cookies exactly when APP_ENV=production (TLS ends at the proxy).
    SESSION_COOKIE_SECURE: bool | None = None
    # Tests turn this off to post forms without a token; never off in production.
    WTF_CSRF_ENABLED: bool = True

    @field_validator("BACKEND_URL", mode="after")
    @classmethod
    def _backend_url_is_http(cls, value: str) -> str:
        # "flights-backend:12015" (no scheme) would make every page a 503 while /health stays
        # green: refuse it at start-up instead.
        if not value.startswith(("http://", "https://")):
            raise ValueError("BACKEND_URL must start with http:// or https://")
        return value

    @field_validator("METRICS_TOKEN", mode="after")
    @classmethod
    def _empty_token_is_unset(cls, value: SecretStr | None) -> SecretStr | None:
        # `METRICS_TOKEN=` (empty) in an env file must not mean "the empty string is the token".
        return value if value is not None and value.get_secret_value() else None

    @model_validator(mode="after")
    def _check_secret_key(self) -> Settings:
        if self.APP_ENV == "production":
            if self.SECRET_KEY == DEV_SECRET_KEY:
                raise ValueError(
                    "SECRET_KEY is the development default; set a random SECRET_KEY of at "
                    f"least {MIN_SECRET_KEY_LENGTH} characters when APP_ENV=production "
                    '(e.g. python -c "import secrets; print(secrets.token_urlsafe(48))")'
                )
            if len(self.SECRET_KEY) < MIN_SECRET_KEY_LENGTH:
                raise ValueError(
                    f"SECRET_KEY is {len(self.SECRET_KEY)} characters; APP_ENV=production "
                    f"requires at least {MIN_SECRET_KEY_LENGTH}"
                )
            if not self.WTF_CSRF_ENABLED:
                raise ValueError("WTF_CSRF_ENABLED must not be disabled when APP_ENV=production")
            if self.METRICS_TOKEN is None and not self.METRICS_PUBLIC:
                raise ValueError(
                    "METRICS_TOKEN is not set: APP_ENV=production refuses to serve /metrics "
                    "without a bearer token; set METRICS_TOKEN to a random value (and give it "
                    "to Prometheus), or set METRICS_PUBLIC=true to expose /metrics openly"
                )
        return self

    @property
    def backend_base_url(self) -> str:
        """``BACKEND_URL`` without a trailing slash."""
        return self.BACKEND_URL.rstrip("/")


def describe_errors(exc: ValidationError) -> str:
    """One line per problem, naming the variable: for start-up error messages."""
    lines = []
    for error in exc.errors():
        name = ".".join(str(part) for part in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        lines.append(f"  {name}: {message}" if name else f"  {message}")
    return "\n".join(lines)
