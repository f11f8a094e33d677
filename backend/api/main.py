"""Application factory: `create_app(settings)` builds the FastAPI app.

The lifespan opens the database once per process in a background thread while uvicorn already
serves the probes (through a WAL replay, a rolling deploy's lock wait, migrations, the demo
data load into a database that never had it, and a first full read of every table), ends the
process with a distinct exit code and one log line when the file cannot be used (api/exits.py),
and on shutdown runs CHECKPOINT, closes the file and flushes the queued spans.

Observability (docs/observability.md) is wired here: JSON logging (idempotent, so TestClient
apps get it too), the process's tracer provider (set up once per process), the
request-telemetry middleware (with the server spans) and `GET /metrics`.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode

import duckdb
import structlog
from anyio import to_thread
from fastapi import FastAPI, Security
from fastapi_offline import FastAPIOffline
from starlette.types import ASGIApp, Receive, Scope, Send

from api import __version__, exits, faults
from api.auth import ApiKeyMiddleware, bearer_scheme
from api.db.batch import GroupCommit
from api.db.cache import ResultCache
from api.db.checks import Heartbeat
from api.db.database import (
    Database,
    DatabaseLockedError,
    DatabaseOpenError,
    run_query,
    wal_path,
)
from api.db.demo_data import load_demo_data
from api.db.ids import IdBlocks
from api.db.lifecycle import DatabaseLifecycle, Phase, Step, lifecycle_of
from api.db.migrate import apply_migrations
from api.http_semantics import MAX_BODY_BYTES, BodySizeLimit, HeadAsGet
from api.idempotency import InFlight, purge_expired
from api.observability import database as db_telemetry
from api.observability import metrics, switch, tracing
from api.observability.identity import ServiceInfo
from api.observability.logging import configure_logging
from api.observability.requests import RequestTelemetryMiddleware
from api.observability.server_spans import ServerSpans
from api.openapi import openapi_schema
from api.problems import install_problem_handlers
from api.routes import flights, health, reference, stats
from api.routes import metrics as metrics_route
from api.schemas import DEFAULT_YEARS, YearRange
from api.settings import Settings, get_settings

logger = structlog.get_logger(__name__)


def open_database(
    settings: Settings,
    lock_timeout_seconds: float | None = None,
    cancel: threading.Event | None = None,
    on_status: Callable[[Step], None] | None = None,
) -> Database:
    """Open the database, apply migrations and (if enabled and empty) load the demo data.

    Blocking: while the file is locked by another process, up to `lock_timeout_seconds`
    (default DB_LOCK_TIMEOUT_SECONDS) or until `cancel` is set; while DuckDB replays a WAL;
    a few seconds for the demo data. `on_status` is told each step (api/db/lifecycle.py;
    the probes show it).
    Raises `DatabaseLockedError` or `DatabaseOpenError` (the file cannot be opened, or its
    schema cannot be read); the file is closed on error.
    """
    report = on_status or (lambda _: None)

    def status(phase: Phase, detail: str | None = None) -> None:
        report(Step(phase, detail))

    wal = wal_path(settings.database_path)
    wal_bytes = wal.stat().st_size if wal.is_file() else 0
    if wal_bytes:
        status(Phase.REPLAYING_WAL, f"{wal_bytes} bytes")
    else:
        status(Phase.OPENING)
    database = Database.open(
        settings.database_path,
        memory_limit=settings.duckdb_memory_limit,
        threads=settings.duckdb_threads,
        lock_timeout_seconds=(
            settings.db_lock_timeout_seconds
            if lock_timeout_seconds is None
            else lock_timeout_seconds
        ),
        cancel=cancel,
        on_lock_wait=lambda: status(Phase.WAITING_FOR_LOCK),
    )
    try:
        with database.session() as cursor:
            status(Phase.MIGRATING)
            apply_migrations(cursor)
            # Once per database: a later empty flights table is the operator's doing.
            never_loaded = run_query(cursor, "demo_loads_count").scalar() == 0
            if settings.load_demo_data and never_loaded:
                status(Phase.LOADING_DEMO_DATA)
                load_demo_data(cursor, force=False)
            purge_expired(cursor)  # idempotency keys past their 24 h
    except duckdb.Error as exc:
        database.close()
        # E.g. a corrupt block of the schema's own tables: as unusable as a corrupt header.
        raise DatabaseOpenError(
            f"{settings.database_path} opened, but its schema cannot be read or migrated",
            str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
        ) from exc
    except BaseException:
        database.close()
        raise
    return database


def data_years(database: Database) -> YearRange:
    """The years the flights table holds (min..max of flights.year), or `DEFAULT_YEARS` while
    it is empty. Read once at start-up: writes outside the range are refused, so only a
    delete could narrow it, and a wider range than the data's stays harmless."""
    with database.session() as cursor:
        first, last = run_query(cursor, "flight_years").rows[0]
    return DEFAULT_YEARS if first is None else YearRange(first, last)


def _give_up(settings: Settings, code: int, reason: str, detail: str | None) -> None:
    exits.report_fatal(
        "database.open_failed",
        code,
        reason=reason,
        detail=detail,
        **{"db.path": str(settings.database_path)},
    )
    exits.exit_now(code)


def open_in_background(app: FastAPI, settings: Settings, cancel: threading.Event) -> None:
    """The opener thread: open the database while uvicorn already serves the probes.

    `/livez` answers and `/health` says "starting" meanwhile (opening, replaying a WAL,
    waiting for another process's lock during a rolling deploy, migrating, the first full
    read); the API answers 503. Moves `app.state.lifecycle` to READY once everything passed
    (api/db/lifecycle.py). Returns
    quietly when `cancel` is set (shutdown). When the database cannot be used, logs ONE line
    (the reason, the file) and ends the process with a distinct exit code (api/exits.py), so
    the platform restarts it or fails the deploy instead of keeping a backend that can never
    serve: 1 when the lock was never released, 4 when the file cannot be opened.
    """
    lifecycle = lifecycle_of(app.state)

    def status(step: Step) -> None:
        lifecycle.step = step

    try:
        database = open_database(settings, cancel=cancel, on_status=status)
    except DatabaseLockedError as exc:
        if not cancel.is_set():
            _give_up(settings, exits.EXIT_RUNTIME_FAILURE, str(exc), None)
        return
    except DatabaseOpenError as exc:
        if not cancel.is_set():
            _give_up(settings, exits.EXIT_DATABASE_UNUSABLE, exc.reason, exc.detail)
        return
    if cancel.is_set():
        database.close()
        return
    lifecycle.enter(Phase.CHECKING_DATA)
    lifecycle.data_check.run(database)  # a corrupt data block shows in /readyz from now on
    years = data_years(database)
    if settings.stats_warm_up:
        try:
            stats.warm_up(app.state.results, database, years)
        except Exception:  # e.g. corrupt blocks: the data check above reports them in /readyz
            logger.warning("stats.warm_up_failed", exc_info=True)
    heartbeat = Heartbeat(database, settings.readiness_timeout_seconds).start()
    lifecycle.ready(database, heartbeat, years)
    logger.info("database.ready", path=str(settings.database_path))


class DropEmptyQueryParams:
    """ASGI middleware: `?origin=&month=` means "not set" (forms send blank fields that way).

    Removes query parameters with an empty value before routing, so they fall back to their
    defaults instead of failing validation (e.g. an empty `date_from`).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("query_string"):
            pairs = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
            kept = [(key, value) for key, value in pairs if value != ""]
            if len(kept) != len(pairs):
                scope = {**scope, "query_string": urlencode(kept).encode("latin-1")}
        await self.app(scope, receive, send)


def service_info(settings: Settings) -> ServiceInfo:
    """The identity in every log line, span resource and `app_build_info`."""
    return ServiceInfo(
        name=settings.otel_service_name,
        version=__version__,
        environment=settings.app_env,
        git_commit=settings.git_commit,
    )


def configure_logging_for(settings: Settings) -> None:
    """`configure_logging` with the service fields taken from `settings`."""
    configure_logging(
        service_info(settings), log_format=settings.log_format, level=settings.log_level
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; `settings` default to the validated environment (`get_settings()`)."""
    settings = settings or get_settings()
    configure_logging_for(settings)
    # TELEMETRY_ENABLED=false: no tracer provider, no instrumentation, no per-request or
    # per-query telemetry (api/observability/switch.py); logs and /metrics stay.
    switch.set_enabled(settings.telemetry_enabled)
    provider = tracing.setup_tracing(service_info(settings)) if settings.telemetry_enabled else None
    faults.configure(settings.fault_injection)  # query faults (drills and tests only)
    metrics.set_build_info(service_info(settings))
    db_telemetry.watch_database(settings.database_path)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Open in a thread of its own and serve at once: uvicorn listens only after start-up,
        # so opening here would refuse every probe for as long as a WAL replay, a lock wait or
        # the demo-data load takes.
        # Sync routes run in anyio's threadpool (40 threads by default). On a few cores more
        # threads add no throughput, only contenders for the GIL: with 40 busy ones even the
        # async probes waited seconds for the event loop (docs/resilience.md).
        to_thread.current_default_thread_limiter().total_tokens = settings.request_threads
        cancel = threading.Event()
        opener = threading.Thread(
            target=open_in_background,
            args=(app, settings, cancel),
            name="database-opener",
            daemon=True,
        )
        opener.start()
        try:
            yield
        finally:
            cancel.set()
            await to_thread.run_sync(opener.join)
            lifecycle = lifecycle_of(app.state)
            database = lifecycle.shut_down()
            if lifecycle.heartbeat is not None:
                await to_thread.run_sync(lifecycle.heartbeat.stop)
            await to_thread.run_sync(app.state.group_writes.stop)
            # Closing the connection while a stats recomputation's cursor runs a query raises
            # (DuckDB: "connection is busy with another call").
            await to_thread.run_sync(app.state.results.wait_for_refreshes, 5.0)
            if database is not None:
                await to_thread.run_sync(database.close)
            # Flush, not shut down: the provider is per process and outlives this app in
            # tests; `serve` shuts it down when the process ends.
            await to_thread.run_sync(tracing.flush_tracing)

    # API docs (API_DOCS_ENABLED; on in development, off in production): Swagger UI and ReDoc
    # with their assets served by this process (fastapi-offline ships them), never a CDN.
    # Off means no /docs, /redoc or /openapi.json at all.
    docs: dict[str, Any] = (
        {"static_url": "/docs-assets"}
        if settings.docs_enabled
        else {"docs_url": None, "redoc_url": None, "openapi_url": None}
    )
    factory: Callable[..., FastAPI] = FastAPIOffline if settings.docs_enabled else FastAPI
    app = factory(
        title="Flight-delay explorer API",
        version=__version__,
        description="nycflights13 flights, statistics and reference data (see docs/api.md).",
        lifespan=lifespan,
        # operationId = the function name (get_flight, ...): stable, and what links refer to.
        generate_unique_id_function=lambda route: route.name,
        **docs,
        # FastAPI's own OpenTelemetry support off: the request middleware opens the server
        # spans (api/observability/instrumentation.py says why).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    # Opening, open, shutting down; with the readiness checks (api/db/lifecycle.py).
    app.state.lifecycle = DatabaseLifecycle()
    app.state.draining = False  # set on SIGTERM (api/__main__.py): the probes answer 503
    # Aggregates and reference lists, reused until the next committed write (api/db/cache.py).
    app.state.results = ResultCache(refresh_seconds=settings.stats_refresh_seconds)
    # New flight ids, reserved in blocks by this one process (api/db/ids.py).
    app.state.flight_ids = IdBlocks("flights")
    # Creates of concurrent requests written by one statement and commit (api/db/batch.py).
    app.state.group_writes = GroupCommit(
        "flight_insert_batch", record_query="idempotency_insert_batch"
    )
    # Idempotency keys whose first request is being handled now (api/idempotency.py).
    app.state.idempotency_in_flight = InFlight()
    install_problem_handlers(app)
    if any(f.route for f in settings.fault_injection):
        # Innermost: an injected delay or error looks like the route's own to everything else.
        app.add_middleware(faults.FaultInjectionMiddleware, faults=settings.fault_injection)
    app.add_middleware(DropEmptyQueryParams)
    app.add_middleware(HeadAsGet)
    app.add_middleware(BodySizeLimit, max_bytes=MAX_BODY_BYTES)  # 413 problem+json
    # Before routing: an unknown /api/v1 path or method is 401 too, not 404/405.
    app.add_middleware(ApiKeyMiddleware, keys=settings.api_keys)
    # Added last = outermost of our middleware: its server span covers the others (Starlette's
    # error middleware stays outside it; the 500 handler links its log line to the span).
    app.add_middleware(
        RequestTelemetryMiddleware,
        record=settings.telemetry_enabled,
        spans=ServerSpans(provider, "api", __version__) if provider is not None else None,
    )
    app.include_router(health.router)
    app.include_router(metrics_route.router)
    # The security scheme only documents the key in the OpenAPI schema (the middleware
    # enforces it); without keys (API_AUTH_DISABLED=true) nothing is claimed.
    secured = [Security(bearer_scheme)] if settings.api_keys else []
    for router in (flights.router, stats.router, reference.router):
        app.include_router(router, dependencies=secured)
    # Every status code, media type and field rule (api/openapi.py).
    app.openapi = lambda: openapi_schema(app)  # type: ignore[method-assign]
    return app
