"""OpenTelemetry tracing, set up by hand (never ``opentelemetry-instrument``: duplicate spans).

:func:`setup` builds one ``TracerProvider`` per *process*. Under gunicorn it runs in each worker
from the ``post_fork`` hook: a ``BatchSpanProcessor`` owns a background thread, and threads do
not survive ``fork()``, so a provider made in the master would silently export nothing from the
workers. The app factory calls :func:`setup` too, which is a no-op when this process already
did it, so tests and ``flask run`` get tracing without gunicorn.

Standard variables honoured (docs/observability.md, "Traces"):

- ``OTEL_SDK_DISABLED=true``: no provider; the global no-op tracer stays, nothing is recorded.
- ``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``: OTLP/HTTP protobuf
  export through a batch processor; without either, spans are created (log lines still carry
  trace ids) but not exported. ``OTEL_TRACES_EXPORTER=none`` also turns export off.
- ``OTEL_TRACES_SAMPLER`` / ``OTEL_TRACES_SAMPLER_ARG`` (default ``parentbased_always_on``),
  ``OTEL_BSP_*``, ``OTEL_EXPORTER_OTLP_*`` (headers, timeout, compression): read by the SDK.
- ``OTEL_RESOURCE_ATTRIBUTES``: merged into the resource; our own keys (``service.name``,
  ``service.version``, ``service.instance.id``, ``deployment.environment.name``) take precedence.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import NoOpTracerProvider

from web.observability import ServiceInfo

log = logging.getLogger(__name__)

# Probes and scrapes are never traced (docs/observability.md). The Flask instrumentation
# matches these regexes with re.search against the full URL, so anchor them on the path:
# a bare "health" would also exclude e.g. "/flights?origin=healthy".
EXCLUDED_URLS = ",".join(
    rf"^[a-z]+://[^/]+/{path}(\?.*)?$" for path in ("livez", "readyz", "health", "metrics")
)

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


_lock = threading.Lock()
_pid: int | None = None
_provider: TracerProvider | None = None


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() == "true"


def sdk_disabled() -> bool:
    """``OTEL_SDK_DISABLED=true`` (the spec's only truthy value is "true", case-insensitive)."""
    return _truthy("OTEL_SDK_DISABLED")


def exporter_configured() -> bool:
    """An OTLP traces endpoint is configured and export is not switched off."""
    if os.environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return False
    return bool(
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    )


def build_resource(info: ServiceInfo) -> Resource:
    """The resource of every span of this process.

    ``service.instance.id`` is a fresh uuid4 per call, i.e. per process (per gunicorn worker),
    so spans of different workers can be told apart.
    """
    return Resource.create(
        {
            "service.name": info.name,
            "service.version": info.version,
            "service.instance.id": str(uuid.uuid4()),
            "deployment.environment.name": info.environment,
        }
    )


def setup(info: ServiceInfo) -> trace.TracerProvider:
    """Create and install this process's tracer provider, once per process (pid). Thread-safe.

    Returns the provider to pass to instrumentations: an SDK ``TracerProvider``, or a
    ``NoOpTracerProvider`` when ``OTEL_SDK_DISABLED=true``. Opens no connection: the OTLP
    exporter connects lazily from its background thread.
    """
    global _pid, _provider
    with _lock:
        if _pid == os.getpid():
            return _provider or NoOpTracerProvider()
        _pid = os.getpid()
        _provider = None
        use_stable_http_semconv()
        if sdk_disabled():
            log.info("tracing disabled (OTEL_SDK_DISABLED=true)")
            return NoOpTracerProvider()
        # sampler=None: the SDK reads OTEL_TRACES_SAMPLER(_ARG), default parentbased_always_on.
        provider = TracerProvider(resource=build_resource(info))
        if exporter_configured():
            # Imported here: the exporter pulls in protobuf/requests, only needed when used.
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        # The global provider can be set only once per process; a second attempt (a test that
        # installed its own first) only warns, and we still hand our provider out explicitly.
        trace.set_tracer_provider(provider)
        _provider = provider
        log.info(
            "tracing ready",
            extra={"otlp_export": exporter_configured(), "service.instance.id": _instance_id()},
        )
        return provider


def _instance_id() -> str | None:
    if _provider is None:
        return None
    value = _provider.resource.attributes.get("service.instance.id")
    return str(value) if value is not None else None


def provider() -> trace.TracerProvider:
    """This process's provider from :func:`setup`, or the global one if setup never ran here."""
    if _provider is not None and _pid == os.getpid():
        return _provider
    return trace.get_tracer_provider()


def shutdown(timeout_millis: int = 5000) -> None:
    """Flush pending spans and stop the exporter thread (gunicorn ``worker_exit``). Idempotent.

    Never raises: a collector that is down must not turn a clean worker exit into an error.
    """
    global _provider
    with _lock:
        current, _provider = _provider, None
    if current is None or _pid != os.getpid():
        return
    try:
        current.force_flush(timeout_millis)
        current.shutdown()
    except Exception:  # pragma: no cover - exporter errors are already logged by the SDK
        log.warning("tracing shutdown failed", exc_info=True)
