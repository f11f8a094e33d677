"""Frontend configuration, read from the environment (twelve-factor) and validated at start-up."""

from __future__ import annotations

import ipaddress
import os
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Only for local development; production refuses to start with it (see _check_secret_key).
DEV_SECRET_KEY = "dev-insecure-secret-key-change-me"  # nosec B105 # refused in production
MIN_SECRET_KEY_LENGTH = 32
# Production secrets (SECRET_KEY, METRICS_TOKEN, BACKEND_API_KEY): long and not repetitive
# (the backend applies the same rule to its secrets).
MIN_SECRET_DISTINCT_CHARACTERS = 10
GENERATE_HINT = 'e.g. python -c "import secrets; print(secrets.token_urlsafe(32))"'
# Hosts every deployment answers: Coolify's health check runs `curl http://localhost:PORT/...`
# inside the container, and `make run` is opened as localhost.
LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")


def secret_weakness(value: str) -> str | None:
    """Why `value` is too weak for a production secret (a sentence), or None when it is fine."""
    if len(value) < MIN_SECRET_KEY_LENGTH:
        return f"is {len(value)} characters long; production needs at least {MIN_SECRET_KEY_LENGTH}"
    if len(set(value)) < MIN_SECRET_DISTINCT_CHARACTERS:
        return (
            f"has only {len(set(value))} different characters; production needs at least "
            f"{MIN_SECRET_DISTINCT_CHARACTERS} (a random value)"
        )
    return None


def coolify_hosts() -> list[str]:
    """The public host names Coolify gives this application, from `COOLIFY_FQDN` and
    `COOLIFY_URL` (comma-separated; with or without scheme and port, as Coolify's
    ApplicationDeploymentJob::set_coolify_variables writes them: its tests show both
    spellings, the legacy compose parsing swaps the two)."""
    hosts: list[str] = []
    for variable in ("COOLIFY_FQDN", "COOLIFY_URL"):
        for entry in os.environ.get(variable, "").split(","):
            entry = entry.strip()
            if not entry:
                continue
            host = urlsplit(entry if "//" in entry else f"//{entry}").hostname
            if host and host not in hosts:
                hosts.append(host)
    return hosts


def default_allowed_hosts() -> str:
    """`ALLOWED_HOSTS` when unset: the local names plus Coolify's domains of this app."""
    return ",".join([*LOCAL_HOSTS, *coolify_hosts()])


class Settings(BaseSettings):
    """All frontend settings. Environment variable names equal the upper-case field names.

    Timeouts are in seconds. Raises ``pydantic.ValidationError`` on invalid values, including
    a default or short ``SECRET_KEY`` when ``APP_ENV=production``.
    """

    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore")

    # First: the production checks of later fields read it (ValidationInfo.data).
    APP_ENV: Literal["development", "production", "test"] = "development"
    LOG_LEVEL: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    # json: one JSON object per stdout line (production, log shippers); console: coloured lines.
    LOG_FORMAT: Literal["json", "console"] = "json"
    # The standard OpenTelemetry variable; also the `service.name` of every log line.
    OTEL_SERVICE_NAME: str = Field(default="flights-frontend", min_length=1)
    # /metrics needs `Authorization: Bearer <METRICS_TOKEN>` when set. Production refuses to
    # start without one unless METRICS_PUBLIC=true (e.g. metrics port firewalled off).
    METRICS_PUBLIC: bool = False
    # validate_default: the production checks run when a variable is absent, too.
    METRICS_TOKEN: SecretStr | None = Field(default=None, validate_default=True)
    # false: no tracing (no spans at all), no access line, no HTTP/backend-call metrics. Logs and
    # /metrics (build info) stay. The one switch `make bench` compares (docs/performance.md).
    TELEMETRY_ENABLED: bool = True
    # Seconds a worker reuses the dashboard's rendered data for the same filters (0 = never).
    # The backend's figures already lag a write by up to STATS_REFRESH_SECONDS (30 s), so a
    # few seconds more cost little freshness and spare the workers most dashboard renders
    # under load (docs/performance.md); at most 30 s.
    DASHBOARD_CACHE_SECONDS: float = Field(default=5.0, ge=0, le=30)
    # Commit of the running build, for app_build_info. Coolify sets SOURCE_COMMIT at runtime.
    GIT_COMMIT: str = Field(
        default_factory=lambda: os.environ.get("SOURCE_COMMIT") or "unknown", min_length=1
    )
    # Tests turn this off to post forms without a token; never off in production.
    WTF_CSRF_ENABLED: bool = Field(default=True, validate_default=True)
    SECRET_KEY: str = Field(default=DEV_SECRET_KEY, validate_default=True)
    # How long a form's CSRF token is valid (seconds). An expired form is shown again with
    # what was typed and a fresh token (web/views/flights.py), so a short life loses nothing.
    CSRF_TIME_LIMIT_SECONDS: int = Field(default=3600, ge=60, le=7 * 24 * 3600)
    BACKEND_URL: str = "http://127.0.0.1:12015"
    # Sent as `Authorization: Bearer <key>` on every backend call. A comma-separated list
    # (the backend's rotation form) sends its FIRST key. Required in production.
    BACKEND_API_KEY: SecretStr | None = Field(default=None, validate_default=True)
    # Seconds. A page waits for the backend at most its budget in all (web/budget.py): the
    # read timeout while the backend answers quickly (a stalled backend costs a page about a
    # second), up to the max while it was recently slower (a busy machine, a slow route).
    BACKEND_CONNECT_TIMEOUT_SECONDS: float = Field(default=0.5, gt=0)
    BACKEND_READ_TIMEOUT_SECONDS: float = Field(default=0.8, gt=0)
    BACKEND_MAX_TIMEOUT_SECONDS: float = Field(default=5.0, gt=0)
    # Seconds from a page's arrival within which a call that got a fast, explicit "not now"
    # (503, refused, closed or reset connection) may still be retried when that is safe, even
    # past the page budget: the hand-over of a rolling deploy (old backend stopping, new one
    # opening the file) took up to 1.35 s on a busy machine, longer than the 0.8 s budget.
    # Timeouts are never retried, so a stalled backend still costs a page its budget.
    BACKEND_RETRY_WINDOW_SECONDS: float = Field(default=3.0, ge=0, le=30)
    # Circuit breaker (web/circuit_breaker.py, per worker): this many failed calls in a row
    # open it; it stays open this long (seconds), then one trial call decides.
    BACKEND_CIRCUIT_FAILURES: int = Field(default=3, ge=1, le=1000)
    BACKEND_CIRCUIT_RESET_SECONDS: float = Field(default=2.0, gt=0, le=300)
    # /readyz must answer quickly even when the backend hangs: probes have short deadlines.
    READINESS_TIMEOUT_SECONDS: float = Field(default=1.0, gt=0)
    HOST: str = "127.0.0.1"
    PORT: int = Field(default=12016, ge=1, le=65535)
    # Peers whose X-Forwarded-* headers are honoured (the TLS-terminating proxy): IPs or CIDR
    # networks, comma-separated, "*" for any; gunicorn's syntax, and gunicorn reads it too.
    FORWARDED_ALLOW_IPS: str = "127.0.0.1,::1"
    # Number of proxies in front of us whose X-Forwarded-* headers we trust (Coolify: one).
    PROXY_FIX_COUNT: int = Field(default=1, ge=0)
    # Host names this site answers (Host / a trusted X-Forwarded-Host); anything else is 400.
    # A leading dot allows subdomains (".example.com"); "*" allows any host.
    ALLOWED_HOSTS: str = Field(default_factory=default_allowed_hosts)
    # None = Secure cookies exactly when APP_ENV=production (TLS ends at the proxy).
    SESSION_COOKIE_SECURE: bool | None = None

    @field_validator("BACKEND_URL", mode="after")
    @classmethod
    def _backend_url_is_http(cls, value: str) -> str:
        # "flights-backend:12015" (no scheme) would make every page a 503 while /health stays
        # green: refuse it at start-up instead.
        if not value.startswith(("http://", "https://")):
            raise ValueError("BACKEND_URL must start with http:// or https://")
        return value

    @field_validator("METRICS_TOKEN", "BACKEND_API_KEY", mode="before")
    @classmethod
    def _empty_secret_is_unset(cls, value: object) -> object:
        # `METRICS_TOKEN=` (empty) in an env file must not mean "the empty string is the token".
        return None if isinstance(value, str) and not value.strip() else value

    # Each production rule is a field validator (not one model validator after all fields):
    # every invalid setting is then reported at once, not only the first.

    @field_validator("METRICS_TOKEN")
    @classmethod
    def _check_metrics_token(
        cls, value: SecretStr | None, info: ValidationInfo
    ) -> SecretStr | None:
        if info.data.get("APP_ENV") != "production":
            return value
        if value is None:
            if info.data.get("METRICS_PUBLIC"):
                return None
            raise ValueError(
                "is not set: APP_ENV=production refuses to serve /metrics without a bearer "
                "token; set METRICS_TOKEN to a random value (and give it to Prometheus), or "
                "set METRICS_PUBLIC=true to expose /metrics openly"
            )
        weakness = secret_weakness(value.get_secret_value())
        if weakness:
            raise ValueError(f"{weakness}; {GENERATE_HINT}")
        return value

    @field_validator("WTF_CSRF_ENABLED")
    @classmethod
    def _csrf_stays_on(cls, value: bool, info: ValidationInfo) -> bool:
        if not value and info.data.get("APP_ENV") == "production":
            raise ValueError("must not be disabled when APP_ENV=production")
        return value

    @field_validator("SECRET_KEY")
    @classmethod
    def _check_secret_key(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("APP_ENV") != "production":
            return value
        if value == DEV_SECRET_KEY:
            raise ValueError(
                "is the development default; set a random SECRET_KEY of at least "
                f"{MIN_SECRET_KEY_LENGTH} characters when APP_ENV=production ({GENERATE_HINT})"
            )
        weakness = secret_weakness(value)
        if weakness:
            raise ValueError(f"{weakness}; {GENERATE_HINT}")
        return value

    @field_validator("BACKEND_API_KEY")
    @classmethod
    def _check_api_key(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if info.data.get("APP_ENV") != "production":
            return value
        if value is None:
            raise ValueError(
                "is not set: the backend refuses every /api/v1 call without it; set the "
                f"backend's BACKEND_API_KEY here too ({GENERATE_HINT})"
            )
        weakness = secret_weakness(value.get_secret_value().split(",")[0].strip())
        if weakness:
            raise ValueError(f"{weakness}; {GENERATE_HINT}")
        return value

    @field_validator("FORWARDED_ALLOW_IPS")
    @classmethod
    def _check_forwarded_allow_ips(cls, value: str) -> str:
        for entry in (e.strip() for e in value.split(",")):
            if entry and entry != "*":
                try:
                    ipaddress.ip_network(entry)
                except ValueError:
                    raise ValueError(
                        f"{entry[:40]!r} is not an IP address or network (e.g. 10.0.0.0/8)"
                    ) from None
        return value

    @property
    def allowed_hosts(self) -> list[str] | None:
        """`ALLOWED_HOSTS` as Flask's `TRUSTED_HOSTS` (None = any host, from `*`)."""
        hosts = [h.strip().lower() for h in self.ALLOWED_HOSTS.split(",") if h.strip()]
        return None if "*" in hosts else hosts

    @property
    def backend_api_key(self) -> str | None:
        """The key sent to the backend: the first of `BACKEND_API_KEY`'s keys, or None."""
        if self.BACKEND_API_KEY is None:
            return None
        return self.BACKEND_API_KEY.get_secret_value().split(",")[0].strip()

    @property
    def session_cookie_secure(self) -> bool:
        """Whether the session cookie is ``Secure``: ``SESSION_COOKIE_SECURE``, by default
        exactly when ``APP_ENV=production`` (TLS ends at the proxy)."""
        if self.SESSION_COOKIE_SECURE is None:
            return self.APP_ENV == "production"
        return self.SESSION_COOKIE_SECURE

    @property
    def backend_base_url(self) -> str:
        """``BACKEND_URL`` without a trailing slash."""
        return self.BACKEND_URL.rstrip("/")


def describe_errors(exc: ValidationError) -> list[dict[str, Any]]:
    """Every problem as ``{"variable": NAME, "message": text}`` (never the value), for the
    one JSON line gunicorn.conf.py writes when it refuses to start."""
    return [
        {
            "variable": ".".join(str(part) for part in error["loc"]) or "(settings)",
            "message": str(error["msg"]).removeprefix("Value error, "),
        }
        for error in exc.errors()
    ]
