"""Flask frontend of the flight-delay explorer: app factory.

Start with ``gunicorn -c gunicorn.conf.py "web:create_app()"`` from the ``frontend`` folder.
"""

from __future__ import annotations

import logging

from flask import Flask
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from web.backend_client import BackendClient
from web.formatting import register_filters
from web.settings import Settings

__all__ = ["create_app"]

csrf = CSRFProtect()


def create_app(settings: Settings | None = None) -> Flask:
    """Build the Flask app. ``settings`` defaults to ``Settings()`` read from the environment.

    Raises ``pydantic.ValidationError`` on invalid configuration (e.g. a default
    ``SECRET_KEY`` in production), so gunicorn refuses to start with a clear message.
    The backend client is created here but opens no connection until the first request.
    """
    settings = settings or Settings()
    logging.basicConfig(level=settings.LOG_LEVEL.upper())  # replaced by structlog later
    # httpx logs every request at INFO; the access log and (later) traces already cover that.
    logging.getLogger("httpx").setLevel(logging.WARNING)

    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.SECRET_KEY,
        WTF_CSRF_ENABLED=settings.WTF_CSRF_ENABLED,
        # Tokens live as long as the session; a long form-filling session should not expire.
        WTF_CSRF_TIME_LIMIT=None,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        # TLS ends at the proxy; in production the browser only ever talks HTTPS.
        SESSION_COOKIE_SECURE=(
            settings.APP_ENV == "production"
            if settings.SESSION_COOKIE_SECURE is None
            else settings.SESSION_COOKIE_SECURE
        ),
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

    csrf.init_app(app)
    register_filters(app)

    from web.views import dashboard, errors, flights, health

    app.register_blueprint(health.bp)
    csrf.exempt(health.bp)
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

    # Placeholder for the observability issue: structlog request context, OpenTelemetry Flask
    # and httpx instrumentation, Prometheus metrics (/metrics) are wired here.
    return app
