"""Structured logs: every line on stdout is one JSON object (docs/observability.md, "Logs").

This file is identical in both services (`tests/test_shared_files.py`); what each service's
HTTP server (uvicorn, gunicorn) needs lives in `servers.py`.

Application code logs events through structlog: an event name and fields, never a formatted
string (`structlog.get_logger(__name__).info("database.opened", path=..., threads=4)`). Stdlib
records (uvicorn, gunicorn, Werkzeug, httpx, OpenTelemetry, warnings, uncaught exceptions)
end in ONE handler on the root logger whose `structlog.stdlib.ProcessorFormatter` runs the
same processors, so every line has one schema:

    {"timestamp": "2026-11-29T13:05:01.123456Z", "level": "info", "event": "...",
     "logger": "api.access", "service.name": "flights-backend", "service.version": "0.1.0",
     "deployment.environment.name": "development", "process.pid": 4711,
     "trace_id": "<32 hex>", "span_id": "<16 hex>", "request_id": "..."}

`trace_id`/`span_id` come from the active, valid OpenTelemetry span; `request_id` (and other
request fields) from structlog's contextvars, bound per request (`bind_request_context`).
Secrets are replaced by "[REDACTED]" before rendering (`redaction.py`). `LOG_FORMAT=console`
swaps the JSON renderer for structlog's ConsoleRenderer.

The per-request access line (`access_logger()`) is the one hot line: it takes structlog's
documented fast path (structlog docs, "Performance": `make_filtering_bound_logger`,
`cache_logger_on_first_use`, orjson rendering to bytes) with the same fields, no stdlib
`LogRecord`, no frame walking, no lock per line, and no write(2) on the request's thread: the
lines are written together every few milliseconds (`_StdoutLines`, in place of structlog's
`BytesLogger`).
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import select
import sys
import threading
import time
from collections import deque
from collections.abc import MutableMapping
from types import TracebackType
from typing import Any, Literal, TextIO

import orjson
import structlog
from opentelemetry import trace
from structlog.typing import EventDict, FilteringBoundLogger, Processor, WrappedLogger

from .identity import ServiceInfo
from .redaction import REDACTED, redact
from .servers import configure_server_logging

__all__ = [
    "REDACTED",
    "access_logger",
    "bind_request_context",
    "clear_request_context",
    "configure_logging",
    "current_context",
    "flush_access_lines",
    "make_handler",
    "redact_secrets",
]

LogFormat = Literal["json", "console"]

# The package ("api" or "web"): names the access and uncaught-exception loggers.
_PACKAGE = __name__.split(".")[0]
ACCESS_LOGGER = f"{_PACKAGE}.access"
# Marks the handler this module installs, so re-configuring replaces it instead of stacking.
_HANDLER_MARK = "_observability_stdout_handler"

# The shared rules: secret-named fields and credentials in free text.
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


# The service fields of every line. Module state rather than a closure: loggers cached on
# first use keep the processor chain of that moment, so a later configure_logging() only
# updates these values.
_SERVICE: dict[str, str] = {
    "service.name": "unknown",
    "service.version": "unknown",
    "deployment.environment.name": "development",
}


def add_service_fields(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Add `service.name`, `service.version`, `deployment.environment.name` and
    `process.pid` (read per line: gunicorn workers are forked from the master)."""
    for key, value in _SERVICE.items():
        event_dict.setdefault(key, value)
    event_dict["process.pid"] = os.getpid()
    return event_dict


def _dumps(event_dict: EventDict, **_: Any) -> str:
    """JSON of one line with orjson; the stdlib encoder for what orjson refuses.

    orjson rejects e.g. integers beyond 64 bits; `default=str` stringifies any other odd value
    (a datetime, an exception) so a line is never lost.
    """
    return _dumps_bytes(event_dict).decode()


def _dumps_bytes(event_dict: EventDict, **_: Any) -> bytes:
    try:
        return orjson.dumps(event_dict, default=str, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return json.dumps(event_dict, default=str).encode()


def _encode(_: WrappedLogger, __: str, line: Any) -> bytes:
    """Last processor of the console access line: `_StdoutLines` writes bytes."""
    return line.encode() if isinstance(line, str) else bytes(line)


def _processors(log_format: LogFormat) -> list[Processor]:
    """Processors run on every event, structlog's and the stdlib's alike (in this order)."""
    processors: list[Processor] = [
        structlog.contextvars.merge_contextvars,  # request_id, bound per request
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        add_service_fields,
        add_trace_context,
        structlog.processors.StackInfoRenderer(),
    ]
    if log_format == "json":
        # JSON: the stack becomes the `exception` string. The console renderer prints
        # exc_info itself, prettier, so it must still see it.
        processors.append(structlog.processors.format_exc_info)
    processors += [structlog.processors.UnicodeDecoder(), redact]
    return processors


def _renderer(log_format: LogFormat) -> Processor:
    if log_format == "console":
        return structlog.dev.ConsoleRenderer()
    return structlog.processors.JSONRenderer(serializer=_dumps)


# The chain of structlog loggers: one list object, updated in place, so loggers cached on
# first use follow every re-configuration (tests, the app factory after gunicorn's master).
_CHAIN: list[Processor] = []


class _StdoutLines:
    """The access line's structlog logger: the lines of one process, written by a writer
    thread to the file descriptor of `sys.stdout` as it was when they were logged (pytest
    swaps it per test; a logger bound to the stream of its creation would later write to a
    closed file).

    Why not a write per line: every write(2) releases the GIL, and under load the request
    thread that wrote waits for it again while the others run; structlog's `BytesLogger`
    also held a lock across the write, and batches written by the request threads still
    queued them (py-spy under the dashboard's load, docs/performance.md, sections 13 and 14).
    So a request thread only queues its line (`deque.append`, thread-safe), and the lines go
    out:

    - every `FLUSH_SECONDS` (the writer thread, started in each process with its first line:
      threads do not survive a fork, so gunicorn's workers start their own);
    - from the request thread, when `MAX_PENDING` lines wait (a burst), unless the writer
      thread is writing; when `MAX_QUEUED` wait (a stdout that does not drain), the request
      thread waits until they are written, as a blocking write did before: memory stays
      bounded and a stalled log reader slows the service instead of filling its memory;
    - when `sys.stdout` is another stream than the waiting lines' (tests), first;
    - when the process exits (`flush`: atexit, gunicorn's worker_exit, the backend's serve;
      waiting at most `EXIT_WAIT_SECONDS` for a write in progress).

    A crash that skips the last (SIGKILL, the OOM killer) loses the lines of at most the last
    `FLUSH_SECONDS`, the way nginx's `access_log ... buffer= flush=` loses its buffer; a write
    that fails (a closed stdout) loses its own lines, never the request. The lines go out in
    writes of at most PIPE_BUF bytes: Linux keeps one write(2) to a regular file whole, and a
    pipe (a container's stdout) one of up to PIPE_BUF bytes, so lines of the gunicorn workers
    sharing one stdout never interleave (each worker writes every 50 ms: across workers the
    lines are in time order only within those 50 ms; each line has its timestamp). A longer
    line (a client's long user agent or path) is written alone; on a pipe it may then be
    split by another process's write. A stream without a descriptor (pytest's capsys) gets
    each line at once through `write` and `flush`.
    """

    FLUSH_SECONDS = 0.05
    MAX_PENDING = 256
    MAX_QUEUED = 8 * MAX_PENDING
    EXIT_WAIT_SECONDS = 1.0

    def __init__(self, name: str) -> None:
        self.name = name  # structlog.stdlib.add_logger_name reads it
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        # Also after a fork: the parent's waiting lines are the parent's to write, its writer
        # thread is not in the child, and a lock held at the fork would stay locked.
        self._pending: deque[bytes] = deque()  # append and popleft are thread-safe
        self._stream: TextIO | None = None  # the stream the waiting lines are for
        self._has_fd = False  # whether it has a descriptor (pytest's capsys has none)
        self._writer: threading.Thread | None = None
        self._starting = threading.Lock()
        self._writing = threading.Lock()  # one writer at a time: lines in order

    def msg(self, message: bytes) -> None:
        line = message + b"\n"
        stream = sys.stdout
        if stream is not self._stream:
            self.flush(wait=-1)  # the waiting lines to the stream they were logged for
            self._stream, self._has_fd = stream, _descriptor(stream) is not None
        if not self._has_fd:
            _write_all(None, stream, line)  # (a closed stream: the line is lost, not the request)
            return
        self._pending.append(line)
        if self._writer is None:
            self._start_writer()
        if len(self._pending) >= self.MAX_PENDING:
            self.flush(wait=-1 if len(self._pending) >= self.MAX_QUEUED else 0)

    debug = info = warning = error = critical = exception = log = msg

    def _start_writer(self) -> None:
        with self._starting:
            if self._writer is None:
                self._writer = threading.Thread(
                    target=self._write_periodically, name="access-lines", daemon=True
                )
                self._writer.start()

    def _write_periodically(self) -> None:
        while True:
            time.sleep(self.FLUSH_SECONDS)
            self.flush(wait=0)

    def flush(self, wait: float = EXIT_WAIT_SECONDS) -> None:
        """Write every waiting line, in order, in writes of at most PIPE_BUF bytes.

        `wait`: how long (s) to wait for a write in progress in another thread; -1 without
        limit. With 0 (a request thread, the writer thread) the lines are left to the
        thread writing, which looks again after it let go, so a line added meanwhile is never
        left behind: a thread blocked on a lock held across a write(2) is the convoy this
        class exists to avoid. Otherwise (exit, tests) every line logged before the call is
        out when it returns, unless that wait ran out."""
        while True:
            if wait:
                acquired = self._writing.acquire(timeout=wait)
            else:
                acquired = self._writing.acquire(blocking=False)
            if not acquired:
                return
            try:
                self._drain()
            finally:
                self._writing.release()
            if not self._pending:
                return

    def _drain(self) -> None:
        stream = self._stream or sys.stdout
        fd = _descriptor(stream)  # asked again: a closed stream's number may now be another file's
        chunk: list[bytes] = []
        size = 0
        while self._pending:
            line = self._pending.popleft()
            if chunk and size + len(line) > select.PIPE_BUF:
                _write_all(fd, stream, b"".join(chunk))
                chunk, size = [], 0
            chunk.append(line)
            size += len(line)
        if chunk:
            _write_all(fd, stream, b"".join(chunk))


def _descriptor(stream: TextIO) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
        return None


def _write_to_stream(stream: TextIO, data: bytes) -> None:
    buffer = getattr(stream, "buffer", None)
    if buffer is None:  # a text-only stream (some test harnesses)
        stream.write(data.decode())
    else:
        buffer.write(data)
    stream.flush()


def _write_all(fd: int | None, stream: TextIO, data: bytes) -> None:
    """Write `data` whole; on an error (a closed stdout) these lines are lost, nothing else."""
    try:
        if fd is None:
            _write_to_stream(stream, data)
            return
        view = memoryview(data)
        while view:  # a blocking descriptor takes it all, unless a signal interrupts
            view = view[os.write(fd, view) :]
    except (OSError, ValueError):
        pass


# One per process, whatever `configure_logging` re-creates: its waiting lines stay in order.
_LINES = _StdoutLines(ACCESS_LOGGER)
atexit.register(_LINES.flush)


def flush_access_lines() -> None:
    """Write the access lines still waiting (before the process exits; tests)."""
    _LINES.flush()


def _make_access_logger(log_format: LogFormat) -> FilteringBoundLogger:
    """structlog's fast path for the access line: its level fixed now (the stdlib level of
    `ACCESS_LOGGER`, i.e. LOG_LEVEL, or nothing when that logger is disabled), rendered to
    bytes by orjson and written by `_StdoutLines` (in batches, see there)."""
    stdlib = logging.getLogger(ACCESS_LOGGER)
    level = logging.CRITICAL + 1 if stdlib.disabled else stdlib.getEffectiveLevel()
    final: list[Processor] = (
        [structlog.dev.ConsoleRenderer(), _encode]
        if log_format == "console"
        else [structlog.processors.JSONRenderer(serializer=_dumps_bytes)]
    )
    # The shared processors minus those with nothing to do on this line (no exception, no
    # stack, no bytes values): the same fields, fewer calls on the hot path.
    skip = (
        structlog.processors.StackInfoRenderer,
        structlog.processors.ExceptionRenderer,
        structlog.processors.UnicodeDecoder,
    )
    chain = [p for p in _processors(log_format) if not isinstance(p, skip)]
    logger: FilteringBoundLogger = structlog.wrap_logger(
        _LINES,
        processors=[*chain, *final],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=True,
    ).bind()  # the bound logger itself: no lazy proxy between a request and its line
    return logger


_access: FilteringBoundLogger = _make_access_logger("json")


def access_logger() -> FilteringBoundLogger:
    """The access-line logger (`<package>.access`), as configured by the last
    `configure_logging`: `access_logger().info("http.request", **fields)`."""
    return _access


def _set_service(info: ServiceInfo) -> None:
    _SERVICE.update(
        {
            "service.name": info.name,
            "service.version": info.version,
            "deployment.environment.name": info.environment,
        }
    )


def _configure_structlog(info: ServiceInfo, log_format: LogFormat) -> None:
    global _access
    _set_service(info)
    _CHAIN[:] = [
        structlog.stdlib.filter_by_level,
        *_processors(log_format),
        structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
    ]
    structlog.configure(
        processors=_CHAIN,
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    _access = _make_access_logger(log_format)


def _drop_color_message(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """uvicorn passes an ANSI-coloured copy of its message as `extra={"color_message": ...}`:
    not a field of ours (the line's `event` is the message)."""
    event_dict.pop("color_message", None)
    return event_dict


def make_formatter(info: ServiceInfo, log_format: LogFormat = "json") -> logging.Formatter:
    """The stdlib formatter that renders any `LogRecord` like a structlog event (the service
    fields of every line become `info`'s)."""
    _set_service(info)
    # ExtraAdder only for stdlib records: `logger.info("x", extra={...})` fields appear too.
    # It must come before `redact`, so it goes in front of the shared chain.
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.stdlib.ExtraAdder(),
            _drop_color_message,
            *_processors(log_format),
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _renderer(log_format),
        ],
    )


class _StdoutHandler(logging.StreamHandler[TextIO]):
    """A StreamHandler that always writes to the *current* `sys.stdout` (see _StdoutLines)."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    @property
    def stream(self) -> TextIO:
        return sys.stdout

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass  # always sys.stdout


def make_handler(
    service_name: str,
    service_version: str,
    environment: str,
    log_format: LogFormat = "json",
) -> logging.Handler:
    """A stdout handler with the structlog formatter; also configures structlog itself.

    Plain keyword arguments so `logging.config.dictConfig` can build it (the `"()"` factory
    of the frontend's gunicorn `logconfig_dict`, `servers.py`).
    """
    info = ServiceInfo(service_name, service_version, environment)  # logs carry no commit
    _configure_structlog(info, log_format)
    handler = _StdoutHandler()
    handler.setFormatter(make_formatter(info, log_format))
    setattr(handler, _HANDLER_MARK, True)
    return handler


def configure_logging(
    info: ServiceInfo, *, log_format: LogFormat = "json", level: str = "INFO"
) -> None:
    """Route all logging of this process (structlog and stdlib) to stdout. Idempotent.

    `level` is a stdlib level name (`LOG_LEVEL`). Replaces only the handler a previous call
    installed, so handlers others attached to the root logger (pytest's caplog) stay. Also
    sets up the HTTP server's loggers (`servers.configure_server_logging`: their own access
    lines are replaced by ours), turns warnings into log records and logs uncaught exceptions
    as one line with the stack in `exception`.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _HANDLER_MARK, False):
            root.removeHandler(handler)
    root.setLevel(level.upper())
    handler = make_handler(info.name, info.version, info.environment, log_format)
    root.addHandler(handler)
    configure_server_logging(level)
    logging.captureWarnings(True)  # warnings.warn(...) -> a log line instead of raw stderr
    _install_excepthooks()


def _install_excepthooks() -> None:
    """Uncaught exceptions (main thread and other threads) become one line with the stack."""
    log = structlog.get_logger(f"{_PACKAGE}.uncaught")

    def excepthook(
        kind: type[BaseException], value: BaseException, tb: TracebackType | None
    ) -> None:
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, value, tb)
            return
        log.critical("exception.uncaught", exc_info=(kind, value, tb))

    def thread_excepthook(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is None or issubclass(args.exc_type, SystemExit):
            return
        log.critical(
            "exception.uncaught",
            exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
            **{"thread.name": args.thread.name if args.thread else None},
        )

    sys.excepthook = excepthook
    threading.excepthook = thread_excepthook


def bind_request_context(**values: Any) -> None:
    """Start a fresh per-request log context holding `values` (e.g. `request_id`): worker
    threads are reused, so the previous request's values are cleared first."""
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(**values)


def clear_request_context() -> None:
    """Drop the per-request log context (request start and end: threads are reused)."""
    structlog.contextvars.clear_contextvars()


def current_context() -> MutableMapping[str, Any]:
    """The values bound to the log context of the current thread/task (e.g. `request_id`)."""
    return structlog.contextvars.get_contextvars()
