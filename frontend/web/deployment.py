"""Checks of how the frontend is deployed (ops/coolify.md), said where an operator looks.

With ``APP_ENV=production`` the session cookie is ``Secure``: a browser never sends it back
over plain http, so on an ``http://`` domain (such as the ``sslip.io`` one Coolify generates
for every new resource) every form fails its CSRF check. The frontend says why:

- at start-up, one warning when a domain Coolify routes to it is ``http://``;
- on every page the browser got over plain http, a banner (``plain_http_forms`` in templates);
- on a form refused by CSRF over plain http, the cause instead of "reload and try again".
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import structlog
from flask import Flask, Request, current_app, request

ADVICE = (
    "give the frontend an https:// domain (Coolify: the resource's Domains page; the proxy "
    "gets the certificate), or set SESSION_COOKIE_SECURE=false for a trial on plain http"
)

log = structlog.get_logger(__name__)


def plain_http_domains(environ: Mapping[str, str]) -> list[str]:
    """The ``http://`` domains among those Coolify gives this container: ``COOLIFY_URL`` holds
    them with their scheme, comma-separated (coollabsio/coolify app/Jobs/
    ApplicationDeploymentJob.php:3129-3140 at 379abb2; ``COOLIFY_FQDN`` in the legacy parser)."""
    entries = f"{environ.get('COOLIFY_URL', '')},{environ.get('COOLIFY_FQDN', '')}".split(",")
    return sorted({e.strip() for e in entries if e.strip().lower().startswith("http://")})


def startup_warnings(cookie_secure: bool, environ: Mapping[str, str] = os.environ) -> list[str]:
    """Warnings (sentences) for the start-up log; empty when forms can work."""
    domains = plain_http_domains(environ)
    if not cookie_secure or not domains:
        return []
    return [
        f"this site is served on plain http ({', '.join(domains)}) but its session cookie is "
        "Secure (APP_ENV=production): browsers never send it back over http, so every form "
        f"fails its CSRF check; {ADVICE}"
    ]


def browser_scheme(req: Request) -> str:
    """The scheme the browser used: the proxy's ``X-Forwarded-Proto`` (Traefik always sets
    it), else this connection's. A spoofed header only changes a banner."""
    forwarded = req.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return forwarded or req.scheme


def forms_cannot_work(req: Request) -> bool:
    """True when this request came over plain http while the session cookie is Secure."""
    return bool(current_app.config.get("SESSION_COOKIE_SECURE")) and browser_scheme(req) == "http"


PLAIN_HTTP_MESSAGE = (
    "This site is served over plain HTTP, but its session cookie only travels over HTTPS, so "
    "no form can be submitted here. Open the site with https:// (the operator needs to give "
    "it an https domain)."
)


def refused_for_plain_http() -> str | None:
    """For a form refused by CSRF: the message to show when the cause is plain http (and a
    warning line for the operator), else None."""
    if not forms_cannot_work(request):
        return None
    log.warning(
        "csrf.plain_http",
        message="form refused on plain http: the Secure session cookie never came back",
        advice=ADVICE,
    )
    return PLAIN_HTTP_MESSAGE


def install(app: Flask) -> None:
    """Expose ``plain_http_forms`` to every template."""

    @app.context_processor
    def plain_http_forms() -> dict[str, bool]:
        return {"plain_http_forms": forms_cannot_work(request)}
