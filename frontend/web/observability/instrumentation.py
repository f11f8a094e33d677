"""Server spans of the frontend: Flask instrumented (service-specific part of `tracing.py`)."""

from __future__ import annotations

from flask import Flask
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.trace import TracerProvider

from .tracing import EXCLUDED_URLS


def instrument_app(app: Flask, provider: TracerProvider | None) -> None:
    """Add the Flask server spans to `app`; no-op without a provider.

    Probes and scrapes (`EXCLUDED_URLS`) get no span. The stable HTTP conventions were forced
    by `tracing.setup_tracing`, which ran before (gunicorn's post_fork or the app factory).
    """
    if provider is None:
        return
    FlaskInstrumentor().instrument_app(app, excluded_urls=EXCLUDED_URLS, tracer_provider=provider)
