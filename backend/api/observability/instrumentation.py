"""Server spans of the backend: FastAPI instrumented (service-specific part of `tracing.py`)."""

from __future__ import annotations

from fastapi import FastAPI
from opentelemetry.trace import TracerProvider

from .tracing import EXCLUDED_URLS


def instrument_app(app: FastAPI, provider: TracerProvider | None) -> None:
    """Add OpenTelemetry's ASGI middleware (server spans) to `app`; no-op without a provider.

    The internal `receive`/`send` spans are dropped: one server span per request is what an
    operator reads; probes and scrapes (`EXCLUDED_URLS`) get no span at all. The stable HTTP
    conventions were forced by `tracing.setup_tracing`, which ran before.
    """
    if provider is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=provider,
        excluded_urls=EXCLUDED_URLS,
        exclude_spans=["receive", "send"],
    )
