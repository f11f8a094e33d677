"""Start-up checks of how the backend is deployed (ops/coolify.md).

Mistakes that still let the backend start, but break or expose the site: each becomes one
warning line naming the Coolify setting to change. Only in production, and only when the
backend listens beyond loopback (the all-in-one image keeps it on 127.0.0.1, where neither a
port nor a domain can matter).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from api.settings import Settings

# The port the frontend's default BACKEND_URL names (frontend/nixpacks.toml).
FRONTEND_EXPECTS = "http://flights-backend:12015"
EXPECTED_PORT = 12015
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def public_domains(environ: Mapping[str, str]) -> list[str]:
    """The domains Coolify routes to this container: `COOLIFY_URL` / `COOLIFY_FQDN`
    (comma-separated, empty when the resource has none; coollabsio/coolify
    app/Jobs/ApplicationDeploymentJob.php:3123-3145 at 379abb2)."""
    domains: list[str] = []
    for name in ("COOLIFY_URL", "COOLIFY_FQDN"):
        for entry in environ.get(name, "").split(","):
            host = entry.strip().removeprefix("https://").removeprefix("http://").split("/")[0]
            if host and host not in domains:
                domains.append(host)
    return domains


def deployment_warnings(settings: Settings, environ: Mapping[str, str] = os.environ) -> list[str]:
    """Warnings (sentences) about this deployment; empty when nothing looks wrong."""
    if settings.app_env != "production" or settings.host in LOOPBACK:
        return []
    warnings = []
    if settings.port != EXPECTED_PORT:
        warnings.append(
            f"the backend listens on PORT={settings.port} (in Coolify: the first 'Ports exposes' "
            f"entry), but the frontend's default BACKEND_URL is {FRONTEND_EXPECTS}: set this "
            f"resource's Ports exposes to {EXPECTED_PORT}, or the frontend's BACKEND_URL to "
            f"port {settings.port}"
        )
    domains = public_domains(environ)
    if domains:
        warnings.append(
            f"the backend has a public domain ({', '.join(domains)}): Coolify's proxy routes it "
            "from the internet to this API; delete it on this resource's Domains page (the "
            "frontend reaches the backend through its network alias)"
        )
    return warnings
