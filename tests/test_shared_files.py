"""Files both services ship (each is deployed alone from its folder) must stay identical.

The shared parts of the two `observability/` packages are copies, file for file; what is
service-specific lives in files of its own. Where both services have a service-specific file
of the same name (`servers.py`), its public functions keep the same names and signatures, so
the shared files can call them. (`instrumentation.py` differs by design: the backend's server
spans are opened by its request middleware; the frontend instruments Flask.)
"""

from __future__ import annotations

import ast
import difflib
from pathlib import Path

import pytest
from conftest import ROOT

BACKEND = ROOT / "backend/api/observability"
FRONTEND = ROOT / "frontend/web/observability"

# Identical copies in both services.
IDENTICAL = [
    "identity.py",  # ServiceInfo: the identity in logs, span resources, app_build_info
    "logging.py",  # structlog set-up, the log schema, the access line's fast path
    "metrics.py",  # HTTP server metrics, build info, /metrics rendering
    "redaction.py",  # one set of secret-redaction rules (docs/observability.md)
    "server_spans.py",  # the server spans' rules: name, attributes, status
    "span_encoding.py",  # spans to OTLP protobuf bytes, and the exporter that sends them
    "tracing.py",  # the OpenTelemetry SDK set-up, stable semconv, excluded URLs
]
# Service-specific, but with the same public functions (the shared files import them).
SAME_INTERFACE = ["servers.py"]


@pytest.mark.parametrize("name", IDENTICAL)
def test_shared_files_are_identical(name: str) -> None:
    backend, frontend = (BACKEND / name).read_text(), (FRONTEND / name).read_text()
    diff = "".join(
        difflib.unified_diff(
            backend.splitlines(keepends=True),
            frontend.splitlines(keepends=True),
            f"backend/api/observability/{name}",
            f"frontend/web/observability/{name}",
        )
    )
    assert backend == frontend, diff


def test_shared_files_import_only_relatively() -> None:
    """A shared file must not name its package (`api.` / `web.`): it would differ."""
    for name in IDENTICAL:
        tree = ast.parse((BACKEND / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                assert node.module.split(".")[0] not in {"api", "web"}, (name, node.module)


def _public_functions(path: Path) -> dict[str, list[str]]:
    tree = ast.parse(path.read_text())
    return {
        node.name: [a.arg for a in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]]
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_")
    }


@pytest.mark.parametrize("name", SAME_INTERFACE)
def test_service_specific_files_share_an_interface(name: str) -> None:
    backend, frontend = _public_functions(BACKEND / name), _public_functions(FRONTEND / name)
    shared = {"servers.py": {"configure_server_logging"}}
    for function in shared[name]:
        assert backend.get(function) == frontend.get(function) is not None, (name, function)
