"""Traces: the OpenTelemetry SDK set up by hand, once per process (docs/observability.md).

- `setup_tracing(...)` installs ONE global `TracerProvider` per process (a module-level guard:
  tests build many apps in one process, and the global provider can be set only once). The
  sampler comes from `OTEL_TRACES_SAMPLER`/`OTEL_TRACES_SAMPLER_ARG` (the SDK reads them;
  default `parentbased_always_on`). An OTLP/HTTP (protobuf) exporter behind a batch processor
  is added only when `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is
  set; without one spans are still created, so log lines carry trace ids.
  `OTEL_SDK_DISABLED=true` turns tracing off (returns None).
- `instrument_app(app, provider)` adds the FastAPI server spans; probes and `/metrics` are
  excluded.
- `query_span(name, statement)` is the CLIENT span of one DuckDB statement (used by
  `api.db.database.run_query`).

Never combine this with `opentelemetry-instrument` (it would install a second provider and
duplicate every span).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

# Regexes searched in the request URL (scheme://host/path, no query string).
EXCLUDED_URLS = "/livez$,/readyz$,/health$,/metrics$"

# One instance id per process: tells restarts and replicas apart in the trace backend.
SERVICE_INSTANCE_ID = str(uuid.uuid4())  # canonical 8-4-4-4-12 form (semconv)

# The stable HTTP semantic conventions (http.request.method, http.response.status_code,
# url.path, server.address, ...) and never the old names, whatever OTEL_SEMCONV_STABILITY_OPT_IN
# says. opentelemetry-instrumentation reads that variable once per process, under a lock, the
# first time an instrumentor initialises (opentelemetry/instrumentation/_semconv.py, 0.66b1,
# lines 204-246: `_OpenTelemetrySemanticConventionStability._initialize`, which returns at
# once when `_initialized` is set; called from FlaskInstrumentor, FastAPIInstrumentor and the
# httpx transports' __init__). So the variable is set here, before any instrumentor, and the
# mode is read again in case something initialised it earlier. Other signals an operator
# opted into (e.g. `database`) are kept; `http/dup` (old and new names) is not.
SEMCONV_OPT_IN = "OTEL_SEMCONV_STABILITY_OPT_IN"


def use_stable_http_semconv() -> None:
    """Make every instrumentation of this process emit only the stable HTTP conventions."""
    from opentelemetry.instrumentation import _semconv

    kept = [
        value.strip()
        for value in os.environ.get(SEMCONV_OPT_IN, "").split(",")
        if value.strip() and not value.strip().startswith("http")
    ]
    os.environ[SEMCONV_OPT_IN] = ",".join(["http", *kept])
    stability = _semconv._OpenTelemetrySemanticConventionStability
    with stability._lock:
        stability._initialized = False  # read the variable again (see above)
    stability._initialize()


_provider: TracerProvider | None = None
_tracer = trace.get_tracer("api.db")  # a proxy: follows the global provider once set


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() == "true"


def setup_tracing(
    *, service_name: str, service_version: str, environment: str
) -> TracerProvider | None:
    """Install the process's tracer provider (first call only) and return it.

    Returns None when `OTEL_SDK_DISABLED=true`. Later calls return the provider of the first
    call whatever their arguments.
    """
    global _provider
    if _provider is not None:
        return _provider
    use_stable_http_semconv()
    if _env_true("OTEL_SDK_DISABLED"):
        return None
    # Resource.create merges OTEL_RESOURCE_ATTRIBUTES; the attributes given here win.
    resource = Resource.create(
        {
            "service.name": service_name,
            "service.version": service_version,
            "service.instance.id": SERVICE_INSTANCE_ID,
            "deployment.environment.name": environment,
        }
    )
    provider = TracerProvider(resource=resource)  # sampler from OTEL_TRACES_SAMPLER*
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    ):
        # Imported here: the exporter pulls in requests/protobuf, not needed without it.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _provider = provider
    return provider


def flush_tracing(timeout_millis: int = 5000) -> None:
    """Export the spans still queued (at the end of the app's lifespan). Never raises."""
    if _provider is not None:
        _provider.force_flush(timeout_millis)


def shutdown_tracing() -> None:
    """Flush and stop the span processors (once, when the process is about to exit)."""
    global _provider
    if _provider is not None:
        _provider.shutdown()


def instrument_app(app: FastAPI, provider: TracerProvider | None) -> None:
    """Add OpenTelemetry's ASGI middleware (server spans) to `app`; no-op without a provider.

    The internal `receive`/`send` spans are dropped: one server span per request is what an
    operator reads; probes and scrapes (`EXCLUDED_URLS`) get no span at all.
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


@lru_cache(maxsize=256)
def operation_name(statement: str) -> str:
    """The first SQL keyword upper-cased (SELECT, INSERT, BEGIN, ...): `db.operation.name`.

    Leading `--` comment lines (migration files start with one) are skipped."""
    for line in statement.splitlines():
        words = line.split(maxsplit=1)
        if words and not words[0].startswith("--"):
            return words[0].upper()
    return ""


@contextmanager
def query_span(name: str, statement: str) -> Iterator[Span]:
    """A CLIENT span named after the query (`name`) around one DuckDB statement.

    Sets `db.system.name`, `db.operation.name`, `db.query.summary`; the caller adds
    `db.response.returned_rows`. On an exception the span records it, gets status ERROR and
    the exception propagates. Yields a non-recording span when instrumentation is suppressed.
    """
    # The standard switch (`opentelemetry.instrumentation.utils.suppress_instrumentation()`),
    # used by the readiness probe so probes leave no traces.
    if not is_instrumentation_enabled():
        yield trace.INVALID_SPAN
        return
    with _tracer.start_as_current_span(
        name,
        kind=SpanKind.CLIENT,
        attributes={
            "db.system.name": "duckdb",
            "db.operation.name": operation_name(statement),
            "db.query.summary": name,
        },
        record_exception=False,  # done below, explicitly
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except BaseException as exc:
            span.record_exception(exc)
            # semconv: the class name of the exception (low cardinality) on a failed operation
            span.set_attribute("error.type", type(exc).__qualname__)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            raise


def current_trace_exemplar() -> dict[str, str] | None:
    """`{"trace_id": <32 hex>}` of the active span when it is sampled, else None.

    Only sampled traces are worth linking from a metric: unsampled ones were never exported.
    """
    context = trace.get_current_span().get_span_context()
    if context.is_valid and context.trace_flags.sampled:
        return {"trace_id": format(context.trace_id, "032x")}
    return None
