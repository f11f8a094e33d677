"""X-Forwarded-* honoured only from the proxies in ``FORWARDED_ALLOW_IPS``.

Werkzeug's ``ProxyFix`` trusts the last ``PROXY_FIX_COUNT`` values of ``X-Forwarded-For``,
``-Proto``, ``-Host``, ``-Port`` and ``-Prefix`` from whoever sent them. So a client talking to
gunicorn directly could forge its address in the access log, a https scheme, a host or a
prefix (``X-Forwarded-Prefix: //evil.example`` turned every link into ``//evil.example/...``).

:class:`TrustedProxyFix` applies ``ProxyFix`` only when the connecting peer (``REMOTE_ADDR``)
is a trusted proxy, and otherwise removes every ``X-Forwarded-*`` and ``Forwarded`` header from
the request, so nothing downstream can read them. The trust rule is gunicorn's own for
``forwarded_allow_ips`` (the same variable, which gunicorn.conf.py passes to gunicorn for
its ``secure_scheme_headers``): individual IPs or CIDR networks, comma-separated, ``*`` for any
peer, and a peer without an IP address (a UNIX socket) is trusted
(gunicorn/http/message.py ``_ip_in_allow_list`` and ``_peer_is_trusted_proxy``,
gunicorn/config.py ``ForwardedAllowIPS``). gunicorn itself never rewrites ``REMOTE_ADDR`` or
the host, which is why the app still needs ``ProxyFix``.

:class:`AllowedHosts` then answers 400 to a request whose host is not in ``ALLOWED_HOSTS``
(Werkzeug's own ``get_host`` check, the one behind Flask's ``TRUSTED_HOSTS``), before Flask
builds a request: no URL, link or redirect is ever made for a foreign host. It runs ahead of
Flask because inside Flask the check raises from wherever the host is first read (a hook
outside any error handler: a 500).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import structlog
from werkzeug.exceptions import SecurityError
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.sansio.utils import get_host

log = structlog.get_logger(__name__)

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_allow_list(value: str) -> tuple[bool, list[IPNetwork]]:
    """``(any peer, networks)`` from ``FORWARDED_ALLOW_IPS`` (e.g. ``"127.0.0.1,10.0.0.0/8"``)."""
    entries = [e.strip() for e in value.split(",") if e.strip()]
    return "*" in entries, [ipaddress.ip_network(e) for e in entries if e != "*"]


def peer_is_trusted(peer: str | None, allow_any: bool, networks: Iterable[IPNetwork]) -> bool:
    """Whether ``peer`` (``REMOTE_ADDR``) may set forwarding headers (gunicorn's rule)."""
    if allow_any or not peer:
        return True
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return True  # no IP address: a UNIX socket, as gunicorn treats it
    return any(address in network for network in networks)


class TrustedProxyFix:
    """WSGI middleware: ``ProxyFix(x_for=n, x_proto=n, x_host=n, x_port=n, x_prefix=n)`` for
    requests from a trusted proxy; forwarding headers stripped from everyone else."""

    def __init__(self, app: WSGIApplication, forwarded_allow_ips: str, count: int) -> None:
        self.app = app
        self.allow_any, self.networks = parse_allow_list(forwarded_allow_ips)
        self.proxied: Any = (
            ProxyFix(app, x_for=count, x_proto=count, x_host=count, x_port=count, x_prefix=count)
            if count > 0
            else app
        )

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        if peer_is_trusted(environ.get("REMOTE_ADDR"), self.allow_any, self.networks):
            return self.proxied(environ, start_response)
        for key in [k for k in environ if k.startswith("HTTP_X_FORWARDED_")]:
            del environ[key]
        environ.pop("HTTP_FORWARDED", None)
        return self.app(environ, start_response)


class AllowedHosts:
    """WSGI middleware: 400 (plain text) unless the request's host is one of ``hosts``.

    ``hosts`` as Flask's ``TRUSTED_HOSTS`` (a leading dot allows subdomains); None allows any.
    """

    def __init__(self, app: WSGIApplication, hosts: list[str] | None) -> None:
        self.app = app
        self.hosts = hosts

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        if self.hosts is not None:
            server = (environ.get("SERVER_NAME", ""), int(environ.get("SERVER_PORT") or 0))
            try:
                get_host(
                    environ.get("wsgi.url_scheme", "http"),
                    environ.get("HTTP_HOST"),
                    server,
                    self.hosts,
                )
            except SecurityError:
                log.warning("host.refused", host=str(environ.get("HTTP_HOST"))[:80])
                body = b"Bad Request: this host is not served here.\n"
                start_response(
                    "400 Bad Request",
                    [
                        ("Content-Type", "text/plain; charset=utf-8"),
                        ("Content-Length", str(len(body))),
                        ("Cache-Control", "no-store"),
                    ],
                )
                return [body]
        return self.app(environ, start_response)
