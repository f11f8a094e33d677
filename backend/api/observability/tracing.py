"""Traces: the OpenTelemetry SDK set up by hand, once per process (docs/observability.md).

Never combine this with `opentelemetry-instrument` (a second provider: every span twice).
This file is identical in both services (`tests/test_shared_files.py`); how each service
instruments its server (and the backend its DuckDB statements, the frontend its backend calls)
lives in `instrumentation.py` and the service's own files.

- `setup_tracing(info)` installs ONE `TracerProvider` per process (pid: under gunicorn it runs
  in each worker from `post_fork`, since a batch processor's thread does not survive `fork()`;
  a later call in the same process returns the same provider). Thread-safe.
- Standard variables: `OTEL_SDK_DISABLED=true` -> no provider (returns None);
  `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` -> OTLP/HTTP protobuf
  export behind a batch processor (the library's exporter with our encoder,
  `span_encoding.py`), unless `OTEL_TRACES_EXPORTER=none`; without an exporter
  spans are still created, so log lines carry trace ids. `OTEL_TRACES_SAMPLER(_ARG)` (default
  `parentbased_always_on`), `OTEL_BSP_*`, `OTEL_EXPORTER_OTLP_*` are read by the SDK;
  `OTEL_RESOURCE_ATTRIBUTES` is merged into the resource, our keys win.
- Always the stable HTTP semantic conventions (`use_stable_http_semconv`).
"""

from __future__ import annotations

import os
import threading
import uuid

import structlog
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from .identity import ServiceInfo

log = structlog.get_logger(__name__)

# Probes and scrapes are never traced: these paths exactly, compared with the request's path
# (instrumentation.py of each service), so "/flights?origin=healthy" is traced.
UNTRACED_PATHS = frozenset({"/livez", "/readyz", "/health", "/metrics"})

# The stable HTTP semantic conventions (http.request.method, http.response.status_code,
# url.path, server.address, ...) and never the old names, whatever OTEL_SEMCONV_STABILITY_OPT_IN
# says. opentelemetry-instrumentation reads that variable once per process, under a lock, the
# first time an instrumentor initialises (opentelemetry/instrumentation/_semconv.py, 0.66b1,
# lines 204-246: `_OpenTelemetrySemanticConventionStability._initialize`, which returns at
# once when `_initialized` is set; called from the httpx transports' __init__ and any
# instrumentor a user adds). So the variable is set here, before any
# instrumentor, and the mode is read again in case something initialised it earlier. Other
# signals an operator opted into (e.g. `database`) are kept; `http/dup` (old and new names) is
# not.
SEMCONV_OPT_IN = "OTEL_SEMCONV_STABILITY_OPT_IN"

_lock = threading.Lock()
_pid: int | None = None
_provider: TracerProvider | None = None


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


def _env_true(name: str) -> bool:
    # The spec's only truthy value is "true" (case-insensitive).
    return os.environ.get(name, "").strip().lower() == "true"


def exporter_configured() -> bool:
    """An OTLP traces endpoint is configured and export is not switched off."""
    if os.environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return False
    return bool(
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    )


def build_resource(info: ServiceInfo) -> Resource:
    """The resource of every span of this process: `service.name`, `service.version`,
    `service.instance.id` (a fresh uuid4 per call, i.e. per process or gunicorn worker, in the
    canonical 8-4-4-4-12 form) and `deployment.environment.name`."""
    return Resource.create(
        {
            "service.name": info.name,
            "service.version": info.version,
            "service.instance.id": str(uuid.uuid4()),
            "deployment.environment.name": info.environment,
        }
    )


def setup_tracing(info: ServiceInfo) -> TracerProvider | None:
    """Install this process's tracer provider (first call per pid) and return it.

    Returns None when `OTEL_SDK_DISABLED=true`. Opens no connection: the OTLP exporter
    connects lazily from its background thread.
    """
    global _pid, _provider
    with _lock:
        if _pid == os.getpid():
            return _provider
        _pid = os.getpid()
        _provider = None
        use_stable_http_semconv()
        if _env_true("OTEL_SDK_DISABLED"):
            log.info("tracing.disabled", reason="OTEL_SDK_DISABLED=true")
            return None
        # sampler=None: the SDK reads OTEL_TRACES_SAMPLER(_ARG), default parentbased_always_on.
        provider = TracerProvider(resource=build_resource(info))
        export = exporter_configured()
        if export:
            # Imported here: the exporter pulls in protobuf/requests, only needed when used.
            from .span_encoding import WireOTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(WireOTLPSpanExporter()))
        # The global provider can be set only once per process; a second attempt (a test that
        # installed its own first) only warns, and our provider is still handed out.
        trace.set_tracer_provider(provider)
        _provider = provider
        log.info(
            "tracing.ready",
            otlp_export=export,
            **{"service.instance.id": str(provider.resource.attributes["service.instance.id"])},
        )
        return provider


def provider() -> trace.TracerProvider:
    """This process's provider from `setup_tracing`, else the global one."""
    if _provider is not None and _pid == os.getpid():
        return _provider
    return trace.get_tracer_provider()


def flush_tracing(timeout_millis: int = 5000) -> None:
    """Export the spans still queued (e.g. at the end of the app's lifespan). Never raises."""
    if _provider is not None and _pid == os.getpid():
        try:
            _provider.force_flush(timeout_millis)
        except Exception:  # pragma: no cover - exporter errors are logged by the SDK
            log.warning("tracing.flush_failed", exc_info=True)


def shutdown_tracing(timeout_millis: int = 5000) -> None:
    """Flush pending spans and stop the exporter thread (process or gunicorn worker exit).

    Idempotent; never raises: a collector that is down must not turn a clean exit into an
    error.
    """
    global _provider
    with _lock:
        current, _provider = _provider, None
    if current is None or _pid != os.getpid():
        return
    try:
        current.force_flush(timeout_millis)
        current.shutdown()
    except Exception:  # pragma: no cover - exporter errors are logged by the SDK
        log.warning("tracing.shutdown_failed", exc_info=True)


def current_trace_exemplar() -> dict[str, str] | None:
    """`{"trace_id": <32 hex>}` of the active span when it is sampled, else None.

    Only sampled traces are worth linking from a metric: unsampled ones were never exported.
    """
    context = trace.get_current_span().get_span_context()
    if context.is_valid and context.trace_flags.sampled:
        return {"trace_id": format(context.trace_id, "032x")}
    return None
