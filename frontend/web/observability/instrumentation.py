"""Server spans of the frontend: Flask instrumented (service-specific part of `tracing.py`)."""

from __future__ import annotations

from typing import Any

import flask
from flask import Flask
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.trace import Span, TracerProvider

from .metrics import normalize_method
from .tracing import EXCLUDED_URLS


def name_unmatched_span(span: Span, _environ: Any) -> None:
    """Flask instrumentation `request_hook`: a request that matched no route is named after
    its method only (semconv: `{method}`, `HTTP` for an unknown one), never its raw path.

    opentelemetry-instrumentation-flask 0.66b1 (`flask/__init__.py`, `get_default_span_name`,
    lines 323-331) falls back to the WSGI default, `{method} {path}` (`wsgi/__init__.py`,
    lines 525-542): every probe of a scanner would be a new span name.
    """
    if flask.request.url_rule is None and span.is_recording():
        method = normalize_method(flask.request.method)
        span.update_name("HTTP" if method == "_OTHER" else method)


def instrument_app(app: Flask, provider: TracerProvider | None) -> None:
    """Add the Flask server spans to `app`; no-op without a provider.

    Probes and scrapes (`EXCLUDED_URLS`) get no span. The stable HTTP conventions were forced
    by `tracing.setup_tracing`, which ran before (gunicorn's post_fork or the app factory).
    """
    if provider is None:
        return
    FlaskInstrumentor().instrument_app(
        app,
        excluded_urls=EXCLUDED_URLS,
        tracer_provider=provider,
        request_hook=name_unmatched_span,
    )
