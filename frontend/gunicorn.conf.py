"""gunicorn settings for the frontend. Start from this folder with:

    gunicorn -c gunicorn.conf.py "web:create_app()"

Everything comes from the environment (HOST, PORT, WEB_CONCURRENCY, FORWARDED_ALLOW_IPS).
The app is loaded in each worker after the fork (no preload_app), so nothing that opens
sockets or starts threads runs in the master.
"""

import os
import sys

from pydantic import ValidationError

# Validate the environment once, in the master, before any worker boots: a bad setting (e.g.
# the default SECRET_KEY in production) stops start-up with a short message instead of a
# worker traceback. Settings() opens nothing, so this is safe before the fork.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from web.settings import Settings, describe_errors

try:
    Settings()
except ValidationError as exc:
    sys.stderr.write(f"Invalid frontend configuration:\n{describe_errors(exc)}\n")
    raise SystemExit(2) from None

# Bind address: HOST/PORT; Nixpacks/Coolify set HOST=0.0.0.0.
bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '12016')}"

# Sync-style Flask code with I/O-bound backend calls: a few threads per worker.
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = 4

# Seconds. A worker silent for longer than `timeout` is killed and replaced. Backend calls
# are bounded by BACKEND_*_TIMEOUT_SECONDS, far below this. Coolify kills 30 s after SIGTERM,
# so in-flight requests get graceful_timeout (20 s) to finish.
timeout = 30
graceful_timeout = 20
keepalive = 5

# TLS ends at the proxy: trust its X-Forwarded-* headers (ProxyFix in the app does the rest).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# Logs go to stdout/stderr for the platform to collect. The logging issue replaces these with
# structlog JSON (logconfig_dict routing gunicorn.error/gunicorn.access through structlog).
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()

# Never run the Werkzeug debugger or reloader under gunicorn.
reload = False

# gunicorn >= 25 opens a control socket at one fixed per-user path ($HOME/.gunicorn): two
# instances on a host would clash and $HOME may be read-only in a container. Not needed.
control_socket_disable = True


# --- Hooks -------------------------------------------------------------------------------
# Placeholders for the observability issue:
#   on_starting: empty PROMETHEUS_MULTIPROC_DIR (Prometheus multiprocess mode).
#   post_fork:   set up OpenTelemetry tracing/exporters in the worker (span processors start
#                threads, so never in the master).
#   child_exit:  prometheus_client.multiprocess.mark_process_dead(worker.pid).


def post_fork(server, worker):
    """Runs in each worker right after the fork (OpenTelemetry goes here)."""


def child_exit(server, worker):
    """Runs in the master when a worker exits (Prometheus mark_process_dead goes here)."""
