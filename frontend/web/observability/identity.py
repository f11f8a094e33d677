"""Who is emitting telemetry: one set of values for log lines, span resources and build info.

This file is identical in both services (`tests/test_shared_files.py`): each service is
deployed alone from its folder, so the shared parts of `observability/` are copies, held equal
by that test. What is service-specific lives in files of its own.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServiceInfo:
    """The identity in every log line (`service.*`, `deployment.environment.name`), every span
    resource and `app_build_info`."""

    name: str  # service.name (OTEL_SERVICE_NAME), e.g. "flights-frontend"
    version: str  # service.version (the package version), e.g. "0.1.0"
    environment: str  # deployment.environment.name (APP_ENV), e.g. "production"
    git_commit: str = "unknown"  # GIT_COMMIT / SOURCE_COMMIT, label of app_build_info
