"""Flask frontend of the flight-delay explorer: app factory.

Start with ``gunicorn -c gunicorn.conf.py "web:create_app()"`` from the ``frontend`` folder.
"""

from __future__ import annotations

from flask import Flask
from flask_wtf.csrf import CSRFProtect
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from werkzeug.middleware.proxy_fix import ProxyFix

from web import deployment
from web.backend_client import BackendClient
from web.formatting import register_filters
from web.observability import ServiceInfo, service_version, tracing
from web.observability import logging as obs_logging
from web.observability import metrics as obs_metrics
from web.observability import requests as obs_requests
from web.settings import Settings

__all__ = ["create_app", "service_info"]

csrf = CSRFProtect()


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
    is set up unless this process already did (gunicorn's post_fork), Flask is instrumented,
    and the request hooks (request id, access line, HTTP metrics) and ``/metrics`` are added.
    With ``TELEMETRY_ENABLED=false`` only logging, the request id and ``/metrics`` remain.
    """
    settings = settings or Settings()
    info = service_info(settings)
    # First, so that anything logged while building the app is already structured.
    obs_logging.configure(info, log_format=settings.LOG_FORMAT, level=settings.LOG_LEVEL)
    telemetry = settings.TELEMETRY_ENABLED
    # TELEMETRY_ENABLED=false: no tracer provider, no instrumentation, no access line or HTTP
    # metrics (only the request id); JSON logs and /metrics (build info) stay.
    tracer_provider = tracing.setup(info) if telemetry else None
    obs_metrics.set_build_info(info)

    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.SECRET_KEY,
        WTF_CSRF_ENABLED=settings.WTF_CSRF_ENABLED,
        # Tokens live as long as the session; a long form-filling session should not expire.
        WTF_CSRF_TIME_LIMIT=None,
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

    if settings.PROXY_FIX_COUNT > 0:
        n = settings.PROXY_FIX_COUNT
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n, x_prefix=n
        )

    # Hook order matters: our request hooks first (request id and access line even when a later
    # before_request such as CSRF fails), then the Flask span, then CSRF.
    obs_requests.install(app, record=telemetry)
    if tracer_provider is not None:
        FlaskInstrumentor().instrument_app(
            app, excluded_urls=tracing.EXCLUDED_URLS, tracer_provider=tracer_provider
        )
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

    @app.after_request
    def security_headers(response):  # type: ignore[no-untyped-def]
        # No scripts, no external assets: the policy can be strict.
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'none'; style-src 'self'; img-src 'self' data:; "
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        return response

    return app
