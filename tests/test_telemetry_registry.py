"""The telemetry registry itself (telemetry/registry/, OpenTelemetry Weaver's format).

The whole-system tests hold the real telemetry to it (tests/test_telemetry.py,
tests/test_system.py); these check the registry and the page generated from it.
"""

from __future__ import annotations

import json
import subprocess
import sys

import yaml
from conftest import BACKEND_DIR, ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import telemetry_registry

# Every attribute name the installed semantic conventions define (stable and incubating), read
# with the backend's venv: opentelemetry-semantic-conventions is a dependency of both services.
SEMCONV_NAMES = """
import importlib, json, pkgutil
import opentelemetry.semconv.attributes as stable
import opentelemetry.semconv._incubating.attributes as incubating
names = set()
for package in (stable, incubating):
    for module in pkgutil.iter_modules(package.__path__):
        loaded = importlib.import_module(f"{package.__name__}.{module.name}")
        names |= {v for k, v in vars(loaded).items() if k.isupper() and isinstance(v, str)}
print(json.dumps(sorted(names)))
"""


def test_the_generated_page_is_committed() -> None:
    """docs/observability.md is what the registry generates (`make lint` checks it too)."""
    expected = telemetry_registry.render(telemetry_registry.load())
    assert telemetry_registry.DOC.read_text() == expected, (
        "run `python scripts/telemetry_registry.py` and commit docs/observability.md"
    )


def test_every_ref_is_a_semconv_attribute_or_our_own() -> None:
    names = set(
        json.loads(
            subprocess.run(
                [str(BACKEND_DIR / ".venv/bin/python"), "-c", SEMCONV_NAMES],
                capture_output=True,
                text=True,
                check=True,
                timeout=60,
            ).stdout
        )
    )
    assert "http.request.method" in names and "db.query.summary" in names
    registry = telemetry_registry.load()
    ours = set(registry.definitions)
    # Our own attributes do not shadow semconv ones, except url.template (see its note) and
    # `state`, a deprecated semconv name (connection pools) we use as a bare metric label.
    assert ours & names <= {"url.template", "state"}, ours & names
    unknown = []
    for path in sorted(telemetry_registry.REGISTRY_DIR.glob("*.yaml")):
        for group in (yaml.safe_load(path.read_text()) or {}).get("groups", []):
            for attribute in group.get("attributes") or []:
                ref = attribute.get("ref")
                if ref and ref not in ours and ref not in names:
                    unknown.append((path.name, group["id"], ref))
    assert not unknown, unknown


def test_manifest_names_the_semconv_version_followed() -> None:
    registry = telemetry_registry.load()
    assert registry.semconv_version.count(".") == 2, registry.semconv_version
    assert {m["prometheus"]["name"] for m in registry.metrics} >= {
        "http_server_request_duration_seconds",
        "duckdb_query_duration_seconds",
        "backend_request_duration_seconds",
    }
