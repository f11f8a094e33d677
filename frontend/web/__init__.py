"""Flask frontend of the flight-delay explorer: app factory.

Start with ``gunicorn -c gunicorn.conf.py "web:create_app()"`` from the ``frontend`` folder.
"""

from __future__ import annotations

from flask import Flask, Response, g, request, send_from_directory
from flask.globals import request_ctx
from flask_wtf.csrf import CSRFProtect

from web import deployment
from web.backend_client import BackendClient
from web.formatting import register_filters
from web.observability import ServiceInfo, service_version, tracing
from web.observability import logging as obs_logging
from web.observability import metrics as obs_metrics
from web.observability import requests as obs_requests
from web.observability.server_spans import ServerSpans
from web.proxies import AllowedHosts, TrustedProxyFix
from web.settings import Settings

__all__ = ["create_app", "service_info"]

csrf = CSRFProtect()

PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"


def service_info(settings: Settings) -> ServiceInfo:
    """The identity in every log line, span resource and ``app_build_info``."""
    return ServiceInfo(
        name=settings.OTEL_SERVICE_NAME,
        version=service_version(),
        environment=settings.APP_ENV,
        git_commit=settings.GIT_COMMIT,
    )


def create_app(settings: Settings | None = None) -> Flask:
    """Build the Flask app. ``settings`` defaults to ``Settings()`` read from the environment.

    Raises ``pydantic.ValidationError`` on invalid configuration (e.g. a default
    ``SECRET_KEY`` in production), so gunicorn refuses to start with a clear message.
    The backend client is created here but opens no connection until the first request.

    Observability (docs/observability.md): logging is (re)configured for this process, tracing
    is set up unless this process already did (gunicorn's post_fork), and the request hooks
    (request id, server span, access line, HTTP metrics) and ``/metrics`` are added.
    With ``TELEMETRY_ENABLED=false`` only logging, the request id and ``/metrics`` remain.
    """
    settings = settings or Settings()
    info = service_info(settings)
    # First, so that anything logged while building the app is already structured.
    obs_logging.configure_logging(info, log_format=settings.LOG_FORMAT, level=settings.LOG_LEVEL)
    telemetry = settings.TELEMETRY_ENABLED
    # TELEMETRY_ENABLED=false: no tracer provider, no instrumentation, no access line or HTTP
    # metrics (only the request id); JSON logs and /metrics (build info) stay.
    tracer_provider = tracing.setup_tracing(info) if telemetry else None
    obs_metrics.set_build_info(info)

    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.SECRET_KEY,
        WTF_CSRF_ENABLED=settings.WTF_CSRF_ENABLED,
        # Bounded: a leaked or old token stops working. An expired form is shown again with
        # the values entered and a fresh token (web/views/flights.py), so no typing is lost.
        WTF_CSRF_TIME_LIMIT=settings.CSRF_TIME_LIMIT_SECONDS,
        # Host header checked against ALLOWED_HOSTS (400 otherwise): no URL or redirect is
        # ever built from a host this site does not serve.
        TRUSTED_HOSTS=settings.allowed_hosts,
        # Forms are a few hundred bytes: anything much larger is refused with 413.
        MAX_CONTENT_LENGTH=64 * 1024,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        # TLS ends at the proxy; in production the browser only ever talks HTTPS.
        SESSION_COOKIE_SECURE=settings.session_cookie_secure,
        # Never show a stack trace: errors go through our handlers, even in development.
        DEBUG=False,
        PROPAGATE_EXCEPTIONS=False,
        TEMPLATES_AUTO_RELOAD=settings.APP_ENV == "development",
    )
    app.extensions["settings"] = settings
    app.extensions["backend"] = BackendClient(settings)

    # Werkzeug's slash merging answered `/flights//1` with a 308 to an absolute URL built from
    # the Host header (Host injection); an unknown path is a plain 404 instead.
    app.url_map.merge_slashes = False
    # X-Forwarded-* only from FORWARDED_ALLOW_IPS, like gunicorn; then the host (as the
    # trusted proxy says, or the Host header) must be one of ALLOWED_HOSTS (web/proxies.py).
    app.wsgi_app = TrustedProxyFix(  # type: ignore[method-assign]
        AllowedHosts(app.wsgi_app, settings.allowed_hosts),
        settings.FORWARDED_ALLOW_IPS,
        settings.PROXY_FIX_COUNT,
    )

    # Hook order matters: our request hooks first (request id, server span and access line even
    # when a later before_request such as CSRF fails), then CSRF.
    spans = ServerSpans(tracer_provider, "web", service_version()) if tracer_provider else None
    obs_requests.install(app, record=telemetry, spans=spans)
    csrf.init_app(app)
    register_filters(app)
    deployment.install(app)

    from web.views import dashboard, errors, flights, health, metrics

    app.register_blueprint(health.bp)
    csrf.exempt(health.bp)
    app.register_blueprint(metrics.bp)
    csrf.exempt(metrics.bp)
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(flights.bp)
    errors.register(app)

    @app.get("/favicon.ico")
    def favicon() -> Response:
        """Browsers ask for /favicon.ico whatever a page links: the SVG icon (base.html links
        it too), cached for a day, instead of a 404 on every first visit."""
        return send_from_directory(
            app.static_folder or "static", "favicon.svg", mimetype="image/svg+xml", max_age=86400
        )

    production = settings.APP_ENV == "production"
    # Flask-WTF keeps the token of this request in g under the field name once generated.
    csrf_field = app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token")

    @app.after_request
    def security_headers(response: Response) -> Response:
        # No scripts, no external assets: the policy can be strict.
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'none'; style-src 'self'; img-src 'self' data:; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        # No page uses a camera, microphone, location, payment or USB device.
        response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
        # request.is_secure: https as the trusted proxy says (web/proxies.py), never a
        # client's own X-Forwarded-Proto. One year; no includeSubDomains, as the template
        # cannot know what else runs under the domain.
        if production and request.is_secure:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        # Per-user content (a form's CSRF token, which also sets the session cookie; a flash
        # message) or the answer to a form: never stored by a browser or a shared cache.
        # (Not `session.accessed`: since Flask 3.1.3 any look at the session sets it, and
        # every page looks for flash messages.)
        per_user = csrf_field in g or bool(getattr(request_ctx, "flashes", None))
        if per_user or request.method not in ("GET", "HEAD"):
            response.headers["Cache-Control"] = "no-store"
        return response

    return app
