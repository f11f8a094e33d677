"""Structured logs: every line on stdout is one JSON object (docs/observability.md, "Logs").

Both structlog loggers and plain stdlib loggers (ours, uvicorn's, OpenTelemetry's, warnings)
end in ONE stdlib handler on stdout whose `structlog.stdlib.ProcessorFormatter` renders the
record, so server lines and application lines share one schema:

    {"timestamp": "2026-11-29T13:05:01.123456Z", "level": "info", "event": "...",
     "logger": "api.access", "service.name": "flights-backend", "service.version": "0.1.0",
     "deployment.environment.name": "development", "process.pid": 4711,
     "trace_id": "<32 hex>", "span_id": "<16 hex>", "request_id": "..."}

`trace_id`/`span_id` come from the active OpenTelemetry span (only a valid span context);
`request_id` and other request fields come from structlog's contextvars (bound by the request
middleware). Secrets are replaced by "[REDACTED]" before rendering (`api.observability.redaction`:
the frontend's rules, free text included). `LOG_FORMAT=console` swaps the JSON renderer for
structlog's coloured ConsoleRenderer.

The per-request access line is the one hot line: `get_direct_logger` renders it with the very
same processors and renderer, but straight to stdout, without a stdlib `LogRecord` (made twice:
once by the logger, once copied by the formatter), `findCaller` frame walking and handler
locking; that was ~70 % of its cost (docs/performance.md, "Telemetry tax, round 2").
JSON is rendered with orjson (several times faster than the stdlib encoder).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import traceback
from types import TracebackType
from typing import Any, Literal, TextIO

import orjson
import structlog
from opentelemetry import trace
from structlog.typing import EventDict, Processor, WrappedLogger

from api.observability.redaction import REDACTED, redact

__all__ = ["REDACTED", "configure_logging", "get_direct_logger", "redact_secrets"]

# The stdout handler we install, so a second call replaces it instead of adding another.
_HANDLER_NAME = "api.observability.stdout"

# The shared rules (identical file in the frontend): secret-named fields and credentials in
# free text.
redact_secrets = redact


def add_trace_context(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Add `trace_id` (32 hex) and `span_id` (16 hex) of the active span, if there is one.

    Written exactly as in a `traceparent` header (lowercase, zero-padded). A span that is not
    sampled still has a valid context (the caller's trace id), so unsampled requests stay
    correlated.
    """
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict["trace_id"] = format(context.trace_id, "032x")
        event_dict["span_id"] = format(context.span_id, "016x")
    return event_dict


# The service fields of every line. Module state rather than a closure: structlog caches
# loggers on first use with the processor chain of that moment, so the chain stays the same
# object and a later configure_logging() only updates these values.
_SERVICE: dict[str, str] = {
    "service.name": "flights-backend",
    "service.version": "0.0.0",
    "deployment.environment.name": "development",
}


def add_service_fields(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Add service.name, service.version, deployment.environment.name and process.pid."""
    event_dict.update(_SERVICE)
    event_dict["process.pid"] = os.getpid()
    return event_dict


SHARED_PROCESSORS: list[Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
    add_service_fields,
    add_trace_context,
    redact_secrets,
]


def _dumps(event_dict: EventDict, **_: Any) -> str:
    """JSON of one line with orjson; the stdlib encoder for what orjson refuses.

    orjson rejects e.g. integers beyond 64 bits; `default=str` stringifies any other odd value
    (a datetime, an exception) so a line is never lost.
    """
    try:
        return orjson.dumps(event_dict, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(event_dict, default=str)


class _StdoutHandler(logging.StreamHandler[TextIO]):
    """A StreamHandler that always writes to the *current* `sys.stdout`.

    pytest swaps `sys.stdout` per test; a handler bound to the stream of the moment would
    later write to a closed file.
    """

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    @property
    def stream(self) -> TextIO:
        return sys.stdout

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass  # always sys.stdout


def configure_logging(
    *,
    level: str = "INFO",
    fmt: Literal["json", "console"] = "json",
    service_name: str = "flights-backend",
    service_version: str = "0.0.0",
    environment: str = "development",
) -> None:
    """Route all logging (structlog and stdlib) to stdout as JSON (or console) lines.

    Idempotent: calling it again replaces our handler and configuration (tests build several
    apps in one process). Handlers that others added to the root logger (pytest's caplog)
    are left alone. Also silences `uvicorn.access` (the request middleware writes the access
    line) and logs uncaught exceptions as JSON with the stack in `exception`.
    """
    _SERVICE.update(
        {
            "service.name": service_name,
            "service.version": service_version,
            "deployment.environment.name": environment,
        }
    )
    renderer: Processor
    if fmt == "console":
        renderer = structlog.dev.ConsoleRenderer()
        final: list[Processor] = [renderer]
    else:
        # The stack as one string in `exception` (ConsoleRenderer formats it by itself).
        final = [
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(serializer=_dumps),
        ]
    _DIRECT_CHAIN[:] = [*SHARED_PROCESSORS, *final]

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.stdlib.PositionalArgumentsFormatter(),
            *SHARED_PROCESSORS,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        # Records of plain stdlib loggers (uvicorn, ours) get the same fields.
        foreign_pre_chain=SHARED_PROCESSORS,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final],
    )

    handler = _StdoutHandler()
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())

    # uvicorn: its loggers propagate to root (no handlers of their own, see serve()); the
    # access logger is replaced by our access line.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.asgi"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    # An exception the app's 500 handler logged (with trace ids) is not logged again by
    # uvicorn ("Exception in ASGI application", without them): one line per error.
    error_log = logging.getLogger("uvicorn.error")
    for stale in [f for f in error_log.filters if isinstance(f, _DropLoggedExceptions)]:
        error_log.removeFilter(stale)
    error_log.addFilter(_DropLoggedExceptions())
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False
    access.disabled = True

    logging.captureWarnings(True)  # warnings become log records, not raw stderr text
    _install_excepthooks()


# Set on an exception by the app's 500 handler once it has been logged (api/problems.py).
LOGGED_MARK = "_api_logged"


class _DropLoggedExceptions(logging.Filter):
    """Drops a record whose exception the application has already logged (`LOGGED_MARK`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not getattr(exc, LOGGED_MARK, False)


def _install_excepthooks() -> None:
    """Log uncaught exceptions (main thread and other threads) as one JSON line each."""
    logger = logging.getLogger("api.uncaught")

    def excepthook(
        kind: type[BaseException], value: BaseException, tb: TracebackType | None
    ) -> None:
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, value, tb)
            return
        logger.critical("uncaught exception", exc_info=(kind, value, tb))

    def thread_excepthook(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is None or issubclass(args.exc_type, SystemExit):
            return
        thread = args.thread.name if args.thread else "?"
        logger.critical(
            "uncaught exception in thread %s",
            thread,
            exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
        )

    sys.excepthook = excepthook
    threading.excepthook = thread_excepthook


# The processors of a direct logger's line: the shared ones, then the formatter's (set by
# configure_logging; the same list object, so loggers made before it see the update).
_DIRECT_CHAIN: list[Processor] = [
    *SHARED_PROCESSORS,
    structlog.processors.format_exc_info,
    structlog.processors.JSONRenderer(serializer=_dumps),
]
# One write (line + newline) and flush at a time: lines from threads never interleave.
_WRITE_LOCK = threading.Lock()


class DirectLogger:
    """A logger for hot lines: the same fields, processors and renderer as every other line,
    written straight to the current `sys.stdout` without going through stdlib logging.

    The level still comes from stdlib logging (`logging.getLogger(name)`, i.e. LOG_LEVEL on
    the root logger, or a level/`disabled` an operator sets on that logger), so the line is
    filtered exactly like a stdlib line would be. Only `info` is needed (the access line).
    """

    def __init__(self, name: str) -> None:
        self._stdlib = logging.getLogger(name)

    def info(self, event: str, **fields: Any) -> None:
        """Write one `info` line with `event` and `fields` (if INFO is enabled for the logger)."""
        if self._stdlib.disabled or not self._stdlib.isEnabledFor(logging.INFO):
            return
        event_dict: Any = {**fields, "event": event}
        try:
            for processor in _DIRECT_CHAIN:
                event_dict = processor(self._stdlib, "info", event_dict)
            line = event_dict if isinstance(event_dict, str) else str(event_dict)
            with _WRITE_LOCK:
                stream = sys.stdout
                stream.write(line + "\n")
                stream.flush()
        except Exception:
            # Like `logging.Handler.handleError`: a log line must never fail the request.
            if logging.raiseExceptions:
                traceback.print_exc(file=sys.__stderr__)


def get_direct_logger(name: str) -> DirectLogger:
    """A `DirectLogger` named `name` (a stdlib logger name, e.g. "api.access")."""
    return DirectLogger(name)
