from __future__ import annotations

import pytest
from pydantic import ValidationError

from web import create_app
from web.settings import DEV_SECRET_KEY, Settings, describe_errors

STRONG = "Zq8-vT3nLw0yRb6KpX2sGd9mHf4jCe7aUo1"  # 35 characters, all different


def test_defaults() -> None:
    s = Settings()
    assert s.PORT == 12016
    assert s.BACKEND_URL == "http://127.0.0.1:12015"
    assert s.BACKEND_CONNECT_TIMEOUT_SECONDS == 0.5
    assert s.BACKEND_READ_TIMEOUT_SECONDS == 0.8
    assert (s.BACKEND_CIRCUIT_FAILURES, s.BACKEND_CIRCUIT_RESET_SECONDS) == (3, 2.0)


def test_production_refuses_default_secret_key() -> None:
    with pytest.raises(ValidationError, match=r"SECRET_KEY\n.*is the development default"):
        Settings(APP_ENV="production", SECRET_KEY=DEV_SECRET_KEY)


def test_production_refuses_short_secret_key() -> None:
    with pytest.raises(ValidationError, match="at least 32"):
        Settings(APP_ENV="production", SECRET_KEY="short-but-not-default")


def test_production_refuses_default_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(ValidationError):
        create_app()


def test_production_accepts_strong_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", STRONG)
    monkeypatch.setenv("METRICS_TOKEN", STRONG[::-1])
    monkeypatch.setenv("BACKEND_API_KEY", STRONG.upper())
    monkeypatch.setenv("BACKEND_URL", "http://backend:12015/")
    s = Settings()
    assert s.backend_base_url == "http://backend:12015"
    app = create_app(s)
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.debug is False


def test_invalid_values_rejected() -> None:
    with pytest.raises(ValidationError):
        Settings(BACKEND_READ_TIMEOUT_SECONDS=0)
    with pytest.raises(ValidationError):
        Settings(APP_ENV="staging")


def test_describe_errors_names_the_variable() -> None:
    with pytest.raises(ValidationError) as info:
        Settings(PORT=0, APP_ENV="production", SECRET_KEY=DEV_SECRET_KEY)
    variables = [problem["variable"] for problem in describe_errors(info.value)]
    # every problem at once, not only the first (issue 8, finding 10)
    assert sorted(variables) == ["BACKEND_API_KEY", "METRICS_TOKEN", "PORT", "SECRET_KEY"]
    with pytest.raises(ValidationError) as info:
        Settings(APP_ENV="production")
    assert "development default" in str(describe_errors(info.value))


def test_backend_url_needs_a_scheme() -> None:
    # Regression (review): without a scheme every page was a 503 while /health stayed green.
    with pytest.raises(ValidationError, match="BACKEND_URL must start with http"):
        Settings(BACKEND_URL="flights-backend:12015")
    assert Settings(BACKEND_URL="https://api.internal").BACKEND_URL == "https://api.internal"


def test_log_level_is_validated() -> None:
    with pytest.raises(ValidationError, match="LOG_LEVEL"):
        Settings(LOG_LEVEL="verbose")  # type: ignore[arg-type]
