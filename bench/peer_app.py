"""The peer stack of `make bench`: the same backend app, observed the way most FastAPI users would.

bench/run.py serves it, in the bench venv (bench/requirements.txt: the backend's pinned
runtime plus what the peer adds), with our own telemetry off (TELEMETRY_ENABLED=false) and:

- zero-code OpenTelemetry: `opentelemetry-instrument uvicorn bench.peer_app:create --factory`,
  set up as https://opentelemetry.io/docs/zero-code/python/ says (`opentelemetry-distro`,
  `opentelemetry-exporter-otlp`, then the instrumentations `opentelemetry-bootstrap -a
  requirements` lists for this venv, pinned in bench/requirements.in). Exported over
  OTLP/HTTP (`OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf`; the distro's default is grpc,
  opentelemetry/distro/__init__.py `_configure`) to the receiver that takes our spans; the
  distro's metric and log exporters are set to `none` because that receiver takes traces only
  and the peer's metrics come from Prometheus (next point);
- prometheus-fastapi-instrumentator with its documented fast track,
  `Instrumentator().instrument(app).expose(app)` (its README), exposed at `/peer-metrics`
  because the app's own `/metrics` route comes first;
- uvicorn's own access log: uvicorn's default logging config (uvicorn/config.py
  `LOGGING_CONFIG`, what `uvicorn` on the command line installs), re-applied after
  `create_app` because the app's logging setup silences `uvicorn.access`.

Everything else is the app as `python -m api serve` builds it (same settings from the
environment, same `gc.freeze()` after building it).
"""

from __future__ import annotations

import gc
import logging.config
import sys
from pathlib import Path

from fastapi import FastAPI
from prometheus_fastapi_instrumentator import Instrumentator
from uvicorn.config import LOGGING_CONFIG

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "backend"))
from api.main import create_app
from api.settings import get_settings


def create() -> FastAPI:
    """The backend app (our telemetry as the environment says: off for the peer) + the peer's."""
    app = create_app(get_settings(serving=True))
    Instrumentator().instrument(app).expose(app, endpoint="/peer-metrics")
    logging.config.dictConfig(LOGGING_CONFIG)  # uvicorn's access log, as its CLI has it
    gc.freeze()  # as api/__main__.py does before serving
    return app
