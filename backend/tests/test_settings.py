import subprocess
import sys
from pathlib import Path

import pytest

from api.settings import SettingsError, get_settings

BACKEND = Path(__file__).resolve().parents[1]


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_PATH", "PORT", "HOST", "APP_ENV", "LOG_LEVEL", "DUCKDB_THREADS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BACKEND_API_KEY", "a-development-key")
    settings = get_settings()
    assert settings.port == 12015 and settings.host == "127.0.0.1"
    assert str(settings.database_path) == "data/app.db"
    assert settings.duckdb_memory_limit == "1GB" and settings.duckdb_threads == 2
    assert settings.load_demo_data is True


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "http"),
        ("PORT", "70000"),
        ("APP_ENV", "staging"),
        ("DUCKDB_MEMORY_LIMIT", "lots"),
        ("DUCKDB_THREADS", "0"),
        ("LOAD_DEMO_DATA", "maybe"),
        ("READINESS_TIMEOUT_SECONDS", "-1"),
    ],
)
def test_bad_values_are_rejected(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv("BACKEND_API_KEY", "a-development-key")
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=name):
        get_settings()


def test_cli_exits_non_zero_on_bad_config() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "api", "migrate"],
        cwd=BACKEND,
        env={"PATH": "/usr/bin:/bin", "PORT": "nope"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "PORT" in result.stdout  # one JSON line (tests/test_security.py reads it)


def test_shutdown_drain_defaults_to_8_s_in_production_and_0_in_development() -> None:
    from api.settings import Settings

    key = "k" + "0123456789abcdefghijklmnopqrstuvwxyzABCDEF"
    production = Settings(app_env="production", backend_api_key=key, metrics_token=key)
    assert production.drain_seconds == 8.0
    assert Settings(app_env="development").drain_seconds == 0.0
    assert Settings(shutdown_drain_seconds=2.5).drain_seconds == 2.5
    with pytest.raises(ValueError):
        Settings(shutdown_drain_seconds=-1)
