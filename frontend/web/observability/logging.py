"""Structured logs: every line the process writes is one JSON object (or a console line).

Both structlog loggers (``structlog.get_logger(...)``) and stdlib loggers (gunicorn, Flask's
``app.logger``, Werkzeug, httpx, OpenTelemetry, warnings, uncaught exceptions) end in one
handler on the root logger whose ``structlog.stdlib.ProcessorFormatter`` renders them with the
same processors, so every line has the same fields (docs/observability.md, "Logs"):

``timestamp`` (RFC 3339 UTC, ``...Z``), ``level`` (lower case), ``event``, ``logger``,
``service.name``, ``service.version``, ``deployment.environment.name``, ``process.pid``, and when
present ``request_id`` (bound per request in :mod:`web.observability.requests`),
``trace_id``/``span_id`` (the active, valid OpenTelemetry span: 32/16 lowercase hex) and
``exception`` (the formatted stack).

Secrets are replaced by ``[REDACTED]`` before rendering (:func:`redact`).

The per-request access line is the one hot line: :func:`get_direct_logger` renders it with the
same processors and renderer, but writes it straight to stdout, without stdlib logging (a
``LogRecord`` made twice, ``findCaller`` frame walking, handler locking) and without building
a structlog logger per call; JSON is rendered with orjson (docs/performance.md, "Telemetry
tax, round 2").

Under gunicorn the master configures logging through ``logconfig_dict`` =
:func:`gunicorn_logconfig` (before any worker forks), so gunicorn's own lines (booting, worker
start/exit, signals) are JSON too; workers inherit it and :func:`configure` (called by the app
factory) re-applies it idempotently, which also covers tests and ``flask run``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import traceback
from collections.abc import MutableMapping
from types import TracebackType
from typing import Any, Literal

import orjson
import structlog
from opentelemetry import trace
from structlog.typing import EventDict, Processor, WrappedLogger

from web.observability import ServiceInfo, redaction
from web.observability.redaction import REDACTED

__all__ = ["REDACTED", "configure", "get_direct_logger", "redact"]

LogFormat = Literal["json", "console"]

# Marks the handler this module installs, so re-configuring replaces it instead of stacking.
_HANDLER_MARK = "_flights_observability_handler"


# -- processors ------------------------------------------------------------------------------

# The shared rules (identical file in the backend): secret-named fields and credentials in
# free text.
redact = redaction.redact


def add_trace_context(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    """Add ``trace_id`` (32 hex) and ``span_id`` (16 hex) of the active valid span, if any.

    Formatted exactly as in ``traceparent``: lowercase, zero-padded. Not-sampled spans count
    too (parent-based sampling keeps the caller's trace id), so logs correlate either way.
    """
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict["trace_id"] = format(context.trace_id, "032x")
        event_dict["span_id"] = format(context.span_id, "016x")
    return event_dict


def add_process_pid(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    """Add ``process.pid``: read per line, since gunicorn workers are forked from the master."""
    event_dict["process.pid"] = os.getpid()
    return event_dict


def service_fields(info: ServiceInfo) -> Processor:
    """A processor adding ``service.name``, ``service.version``, ``deployment.environment.name``."""
    fields = {
        "service.name": info.name,
        "service.version": info.version,
        "deployment.environment.name": info.environment,
    }

    def add_service(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
        for key, value in fields.items():
            event_dict.setdefault(key, value)
        return event_dict

    return add_service


def _shared_processors(info: ServiceInfo, log_format: LogFormat) -> list[Processor]:
    """Processors run on every event, structlog's and the stdlib's alike (in this order)."""
    processors: list[Processor] = [
        structlog.contextvars.merge_contextvars,  # request_id bound by requests.py
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        service_fields(info),
        add_process_pid,
        add_trace_context,
        structlog.processors.StackInfoRenderer(),
    ]
    if log_format == "json":
        # JSON: the stack becomes the `exception` string. The console renderer prints
        # exc_info itself, prettier, so it must still see it.
        processors.append(structlog.processors.format_exc_info)
    processors += [structlog.processors.UnicodeDecoder(), redact]
    return processors


def _dumps(event_dict: EventDict, **_: Any) -> str:
    """JSON of one line with orjson, the stdlib encoder for what orjson refuses (e.g. integers
    beyond 64 bits). default=str: a stray non-JSON value (a datetime, an exception) must never
    lose the line."""
    try:
        return orjson.dumps(event_dict, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(event_dict, default=str)


def _renderer(log_format: LogFormat) -> Processor:
    if log_format == "console":
        return structlog.dev.ConsoleRenderer()
    return structlog.processors.JSONRenderer(serializer=_dumps)


def make_formatter(info: ServiceInfo, log_format: LogFormat = "json") -> logging.Formatter:
    """The stdlib formatter that renders any ``LogRecord`` like a structlog event."""
    shared = _shared_processors(info, log_format)
    # ExtraAdder only for stdlib records: `logger.info("x", extra={...})` fields appear too.
    # It must come before `redact`, so it goes in front of the shared chain.
    foreign: list[Processor] = [structlog.stdlib.ExtraAdder(), *shared]
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=foreign,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _renderer(log_format),
        ],
    )


def _configure_structlog(info: ServiceInfo, log_format: LogFormat) -> None:
    # Direct loggers (the access line) render exactly like the formatter renders a line.
    _DIRECT_CHAIN[:] = [*_shared_processors(info, log_format), _renderer(log_format)]
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.stdlib.PositionalArgumentsFormatter(),
            *_shared_processors(info, log_format),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Not cached: re-configuring (tests, the app factory after gunicorn's master) must reach
        # loggers that were already used, e.g. the module-level access logger.
        cache_logger_on_first_use=False,
    )


def make_handler(
    service_name: str,
    service_version: str,
    environment: str,
    log_format: LogFormat = "json",
    git_commit: str = "unknown",
) -> logging.Handler:
    """A stdout handler with the structlog formatter; also configures structlog itself.

    Plain keyword arguments so ``logging.config.dictConfig`` can build it (``"()"`` factory in
    :func:`gunicorn_logconfig`).
    """
    info = ServiceInfo(service_name, service_version, environment, git_commit)
    _configure_structlog(info, log_format)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(make_formatter(info, log_format))
    setattr(handler, _HANDLER_MARK, True)
    return handler


def _install_excepthooks() -> None:
    """Uncaught exceptions (main thread and other threads) become one log line with the stack."""
    log = logging.getLogger("uncaught")

    def excepthook(
        exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
    ) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc, tb)
            return
        log.critical("uncaught exception", exc_info=(exc_type, exc, tb))

    def thread_excepthook(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        log.critical(
            "uncaught exception in thread",
            exc_info=(args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback),
            extra={"thread.name": getattr(args.thread, "name", None)},
        )

    sys.excepthook = excepthook
    threading.excepthook = thread_excepthook


def configure(info: ServiceInfo, *, log_format: LogFormat = "json", level: str = "INFO") -> None:
    """Route all logging of this process through structlog to stdout. Idempotent.

    ``level`` is a stdlib level name (``LOG_LEVEL``). Replaces only the handler a previous
    call installed, so handlers others attached to the root logger (pytest's caplog) stay.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _HANDLER_MARK, False):
            root.removeHandler(handler)
    root.addHandler(
        make_handler(info.name, info.version, info.environment, log_format, info.git_commit)
    )
    root.setLevel(level.upper())
    _quiet_server_loggers(level)
    logging.captureWarnings(True)  # warnings.warn(...) -> a log line instead of raw stderr
    _install_excepthooks()


def _quiet_server_loggers(level: str) -> None:
    # gunicorn.error keeps its messages but renders them through the root handler; its own
    # access log is replaced by our "http.request" line (requests.py).
    error_log = logging.getLogger("gunicorn.error")
    for handler in list(error_log.handlers):
        error_log.removeHandler(handler)
    error_log.propagate = True
    error_log.setLevel(level.upper())
    access_log = logging.getLogger("gunicorn.access")
    access_log.handlers.clear()
    access_log.propagate = False
    access_log.disabled = True
    # httpx logs every request at INFO; the access line, traces and metrics already cover it.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def gunicorn_logconfig(
    info: ServiceInfo, *, log_format: LogFormat = "json", level: str = "INFO"
) -> dict[str, Any]:
    """The ``logconfig_dict`` for gunicorn.conf.py: everything to stdout through structlog.

    Complete on purpose: gunicorn merges it shallowly into its own defaults, so any section
    left out (root, handlers, formatters) would bring back gunicorn's plain-text handlers.
    """
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "root": {"level": level, "handlers": ["structlog"]},
        "loggers": {
            "gunicorn.error": {"level": level, "handlers": [], "propagate": True},
            "gunicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
            "httpx": {"level": "WARNING"},
        },
        "handlers": {
            "structlog": {
                "()": f"{__name__}.make_handler",
                "service_name": info.name,
                "service_version": info.version,
                "environment": info.environment,
                "log_format": log_format,
                "git_commit": info.git_commit,
            }
        },
        "formatters": {},
    }


# The processors of a direct logger's line (set by _configure_structlog; the same list object,
# so loggers made at import time see every re-configuration).
_DIRECT_CHAIN: list[Processor] = [
    *_shared_processors(ServiceInfo("flights-frontend", "unknown", "development"), "json"),
    _renderer("json"),
]
# One write (line + newline) and flush at a time: lines from threads never interleave.
_WRITE_LOCK = threading.Lock()


class DirectLogger:
    """A logger for hot lines: the same fields, processors and renderer as every other line,
    written straight to the current ``sys.stdout`` without going through stdlib logging.

    The level still comes from stdlib logging (``logging.getLogger(name)``: LOG_LEVEL on the
    root logger, or a level/``disabled`` set on that logger), so the line is filtered exactly
    like a stdlib line. Only ``info`` is needed (the access line).
    """

    def __init__(self, name: str) -> None:
        self._stdlib = logging.getLogger(name)

    def info(self, event: str, **fields: Any) -> None:
        """Write one ``info`` line with ``event`` and ``fields`` (if INFO is enabled)."""
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
            # Like ``logging.Handler.handleError``: a log line must never fail the request.
            if logging.raiseExceptions:
                traceback.print_exc(file=sys.__stderr__)


def get_direct_logger(name: str) -> DirectLogger:
    """A :class:`DirectLogger` named ``name`` (a stdlib logger name, e.g. ``web.access``)."""
    return DirectLogger(name)


def bind_request_context(**values: Any) -> None:
    """Start a fresh per-request log context (worker threads are reused: clear first)."""
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(**values)


def clear_request_context() -> None:
    """Drop the per-request log context (request end)."""
    structlog.contextvars.clear_contextvars()


def current_context() -> MutableMapping[str, Any]:
    """The values bound to the log context of the current thread/task (e.g. ``request_id``)."""
    return structlog.contextvars.get_contextvars()
