"""Start-up warnings about the deployment (api/deployment.py): a backend on Coolify's default
port or with a public domain still starts, but says what to change."""

from __future__ import annotations

import pytest

from api.deployment import deployment_warnings
from api.settings import Settings

PRODUCTION = {"app_env": "production", "metrics_public": True, "host": "0.0.0.0"}


def test_the_intended_deployment_gives_no_warning() -> None:
    settings = Settings(**PRODUCTION, port=12015)
    assert deployment_warnings(settings, {"COOLIFY_URL": "", "COOLIFY_FQDN": ""}) == []


def test_coolify_default_port_names_ports_exposes_and_backend_url() -> None:
    [warning] = deployment_warnings(Settings(**PRODUCTION, port=3000), {})
    assert "PORT=3000" in warning and "Ports exposes" in warning and "BACKEND_URL" in warning


@pytest.mark.parametrize(
    "environ",
    [
        {
            "COOLIFY_URL": "http://x8k2.203.0.113.7.sslip.io",
            "COOLIFY_FQDN": "x8k2.203.0.113.7.sslip.io",
        },
        {"COOLIFY_URL": "", "COOLIFY_FQDN": "https://api.example.com,https://b.example.com"},
    ],
)
def test_a_public_domain_is_named(environ: dict[str, str]) -> None:
    [warning] = deployment_warnings(Settings(**PRODUCTION, port=12015), environ)
    assert "public domain" in warning and "Domains" in warning
    assert ("sslip.io" in warning) or ("api.example.com, b.example.com" in warning)


def test_loopback_and_development_are_not_checked() -> None:
    environ = {"COOLIFY_URL": "https://flights.example.com"}
    loopback = Settings(**{**PRODUCTION, "host": "127.0.0.1"}, port=3000)
    assert deployment_warnings(loopback, environ) == []  # the all-in-one image
    assert deployment_warnings(Settings(port=3000, host="0.0.0.0"), environ) == []
