"""gunicorn settings for the frontend. Start from this folder with:

    gunicorn -c gunicorn.conf.py "web:create_app()"

Everything comes from the environment (HOST, PORT, WEB_CONCURRENCY, FORWARDED_ALLOW_IPS).
The app is loaded in each worker after the fork (no preload_app), so nothing that opens
sockets or starts threads runs in the master.

Observability (docs/observability.md): Prometheus multiprocess mode (PROMETHEUS_MULTIPROC_DIR
set at the very top, emptied in on_starting, dead workers marked in child_exit), JSON logs for
gunicorn's own lines (logconfig_dict), OpenTelemetry set up per worker (post_fork) and flushed
on worker exit (worker_exit).
"""

import atexit
import os
import shutil
import sys
import tempfile

# --- Prometheus multiprocess directory: FIRST, before anything imports prometheus_client ----
# prometheus_client picks its storage (per-process memory vs. shared mmapped files) when it is
# imported, from this variable. A fresh directory per gunicorn instance, so two instances on
# one host never merge each other's samples; an operator-set directory is kept but emptied in
# on_starting. Workers inherit the variable through fork.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="flights-frontend-prom-")
    _master_pid = os.getpid()

    def _remove_prom_dir(path: str = os.environ["PROMETHEUS_MULTIPROC_DIR"]) -> None:
        # atexit, not on_exit: also runs when the master fails early (e.g. port in use).
        # Only in the process that created it (atexit handlers are inherited across fork).
        if os.getpid() == _master_pid:
            shutil.rmtree(path, ignore_errors=True)

    atexit.register(_remove_prom_dir)

from gunicorn import glogging
from pydantic import ValidationError

# Validate the environment once, in the master, before any worker boots: a bad setting (e.g.
# the default SECRET_KEY in production, or no METRICS_TOKEN in production) stops start-up with
# a short message instead of a worker traceback. Settings() opens nothing, so this is safe
# before the fork.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from web import service_info
from web.deployment import startup_warnings
from web.observability import ServiceInfo, service_version, tracing
from web.observability import logging as obs_logging
from web.observability import metrics as obs_metrics
from web.observability.servers import gunicorn_logconfig
from web.settings import Settings, describe_errors

try:
    _settings = Settings()
except ValidationError as exc:
    # Even this refusal is one JSON line (settings are invalid, so read the few values the
    # logger needs straight from the environment, with safe fallbacks).
    _format = "console" if os.environ.get("LOG_FORMAT") == "console" else "json"
    obs_logging.configure_logging(
        ServiceInfo(
            os.environ.get("OTEL_SERVICE_NAME") or "flights-frontend",
            service_version(),
            os.environ.get("APP_ENV") or "development",
        ),
        log_format=_format,
    )
    obs_logging.structlog.get_logger("gunicorn.error").critical(
        "settings.invalid",
        message="invalid frontend configuration, refusing to start",
        errors=describe_errors(exc),  # every problem at once: [{variable, message}]
    )
    raise SystemExit(2) from None

_info = service_info(_settings)

# Bind address: HOST/PORT; Nixpacks/Coolify set HOST=0.0.0.0.
bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '12016')}"

# Sync-style Flask code with I/O-bound backend calls: a few threads per worker. gthread with
# a probe lane (web/worker.py): /livez, /readyz, /health and /metrics get threads of their
# own, so they answer while every page thread waits on a slow backend.
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "web.worker.ProbeLaneWorker"
threads = 4

# Seconds. A worker silent for longer than `timeout` is killed and replaced. Backend calls
# are bounded by BACKEND_*_TIMEOUT_SECONDS (about a second), far below this. Coolify kills
# 30 s after SIGTERM, so in-flight requests get graceful_timeout (20 s) to finish.
timeout = 30
graceful_timeout = 20
keepalive = 5

# TLS ends at the proxy: its X-Forwarded-Proto sets the scheme, from these peers only (the app
# applies the same list to X-Forwarded-For/-Host/-Port/-Prefix, web/proxies.py).
forwarded_allow_ips = _settings.FORWARDED_ALLOW_IPS

# No `Server: gunicorn` banner. gunicorn has no setting for it (maintainers declined one:
# benoitc/gunicorn#825); its Response.default_headers writes the line unconditionally
# (gunicorn/http/wsgi.py), so drop that line there. Runs in the master before the fork, so
# every worker inherits it; frontend/tests/test_gunicorn_observability.py checks the result.
from gunicorn.http import wsgi as _gunicorn_wsgi  # noqa: E402

_default_headers = _gunicorn_wsgi.Response.default_headers


def _headers_without_server(self):
    return [h for h in _default_headers(self) if not h.startswith("Server:")]


_gunicorn_wsgi.Response.default_headers = _headers_without_server

# Logs: every line on stdout is one JSON object (LOG_FORMAT=console for development). The
# master applies logconfig_dict before forking, so gunicorn's own lines (booting, worker
# start/exit, signals) go through structlog too. gunicorn's access log is off: the app writes
# one richer "http.request" line per request (web/observability/requests.py).
accesslog = None
errorlog = "-"


class AppAccessLogger(glogging.Logger):
    """gunicorn's logger without its access log. Since logconfig_dict is set, gunicorn would
    otherwise build the access-log atoms of every request and hand them to the disabled
    gunicorn.access logger (~3 % of a worker under load, py-spy, docs/performance.md)."""

    access_log_enabled = False  # gunicorn >= 23 checks this before building anything

    def access(self, resp, req, environ, request_time):
        return None  # the app writes the access line


logger_class = AppAccessLogger
loglevel = _settings.LOG_LEVEL.lower()
logconfig_dict = gunicorn_logconfig(
    _info, log_format=_settings.LOG_FORMAT, level=_settings.LOG_LEVEL
)

# Never run the Werkzeug debugger or reloader under gunicorn.
reload = False

# gunicorn >= 25 opens a control socket at one fixed per-user path ($HOME/.gunicorn): two
# instances on a host would clash and $HOME may be read-only in a container. Not needed.
control_socket_disable = True


# --- Hooks -------------------------------------------------------------------------------


def on_starting(server):
    """Master, once, before any worker: empty the multiprocess directory (stale samples of an
    earlier run would be merged into this run's counters), and warn about a deployment whose
    forms cannot work (web/deployment.py)."""
    path = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    removed = obs_metrics.empty_multiproc_dir(path)
    log = obs_logging.structlog.get_logger("gunicorn.conf")
    log.info("metrics.multiproc_dir_ready", path=path, stale_files_removed=removed)
    for warning in startup_warnings(_settings.session_cookie_secure):
        log.warning("deployment.warning", message=warning)


def post_fork(server, worker):
    """Each worker, right after the fork: OpenTelemetry (its span processor starts a thread,
    and threads do not survive fork, so never in the master). The app factory then finds
    tracing already set up in this process. Nothing at all with TELEMETRY_ENABLED=false."""
    if _settings.TELEMETRY_ENABLED:
        tracing.setup_tracing(_info)


def worker_exit(server, worker):
    """Each worker, as it exits: write the access lines still waiting, flush the spans still
    queued in the batch processor."""
    obs_logging.flush_access_lines()
    tracing.shutdown_tracing()


def child_exit(server, worker):
    """Master, after a worker exited: drop its live gauges (in-flight requests)."""
    obs_metrics.mark_process_dead(worker.pid)
