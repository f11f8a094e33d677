#!/usr/bin/env python3
"""The telemetry registry (`telemetry/registry/`, OpenTelemetry Weaver's format) as data, and
`docs/observability.md` generated from it.

    python scripts/telemetry_registry.py            # rewrite docs/observability.md
    python scripts/telemetry_registry.py --check    # exit 1 when the committed page differs

Why not Weaver itself (`weaver registry generate`): it is a Rust binary, published neither on
PyPI nor in Debian, and this machine (and CI) install only from those. So this small reader
takes the registry files as they are (Weaver's v1 syntax: `groups` of type `attribute_group`,
`entity`, `span`, `metric`, `metric_group`, `event`; our extras under `annotations.flights`)
and renders the whole page from one Jinja2 template (`telemetry/templates/observability.md.j2`:
the prose sections live there, the tables are generated). The whole-system tests
(tests/test_telemetry.py, tests/test_system.py) use the same reader to hold the real spans,
metrics and log lines of both services to the registry.

Data shapes (all plain dicts and lists; `level` is "required", "recommended", "opt_in" or
"conditionally_required"):

- `Registry.spans`: [{id, kind ("SERVER"/"CLIENT"), name (the name pattern), names (every
  pattern allowed, `name` first), services, brief, note, attributes: {name: level},
  conditions: {name: text}}]
- `Registry.metrics`: [{id, metric_name, instrument, unit, prometheus: {name, type, labels,
  buckets}, services, brief, note}] (metric groups expand to one entry per family)
- `Registry.events`: {name: {services, loggers, levels, brief, note, attributes: {name: level}}}
- `Registry.log_fields`: {name: level} (every line); `Registry.third_party_loggers`: patterns
- `Registry.resource`: {name: level}
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import yaml

ROOT = Path(__file__).resolve().parent.parent
REGISTRY_DIR = ROOT / "telemetry" / "registry"
TEMPLATE = ROOT / "telemetry" / "templates" / "observability.md.j2"
DOC = ROOT / "docs" / "observability.md"


def _level(attribute: dict[str, Any]) -> tuple[str, str]:
    """(`level`, condition text) of one attribute entry of a group."""
    level = attribute.get("requirement_level", "recommended")
    if isinstance(level, dict):
        (name, text), *_ = level.items()
        return str(name), str(text)
    return str(level), ""


def _attr_name(attribute: dict[str, Any]) -> str:
    return str(attribute.get("ref") or attribute["id"])


@dataclass
class Registry:
    """The registry's groups, read from every `*.yaml` of `telemetry/registry/`."""

    manifest: dict[str, Any]
    definitions: dict[str, dict[str, Any]] = field(default_factory=dict)  # our own attributes
    spans: list[dict[str, Any]] = field(default_factory=list)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    log_fields: dict[str, str] = field(default_factory=dict)
    log_field_conditions: dict[str, str] = field(default_factory=dict)
    log_field_notes: dict[str, str] = field(default_factory=dict)
    third_party: dict[str, Any] = field(default_factory=dict)
    resource: dict[str, str] = field(default_factory=dict)
    resource_notes: dict[str, str] = field(default_factory=dict)

    @property
    def semconv_version(self) -> str:
        """The OpenTelemetry semantic conventions version followed (the `otel` dependency)."""
        for dependency in self.manifest.get("dependencies", []):
            if dependency.get("name") == "otel":
                path = str(dependency["registry_path"])
                return path.split("/tags/v", 1)[1].split(".zip", 1)[0]
        raise ValueError("registry_manifest.yaml names no `otel` dependency")

    @property
    def third_party_loggers(self) -> list[str]:
        return list(self.third_party.get("annotations", {}).get("flights", {}).get("loggers", []))

    def brief(self, name: str) -> str:
        """Our own attribute's brief ("" for a semantic-conventions attribute)."""
        return str(self.definitions.get(name, {}).get("brief", "")).strip()


def load(directory: Path = REGISTRY_DIR) -> Registry:
    """Read the registry. Raises ValueError on a group of an unknown type or a duplicate id."""
    registry = Registry(yaml.safe_load((directory / "registry_manifest.yaml").read_text()))
    seen: set[str] = set()
    for path in sorted(directory.glob("*.yaml")):
        if path.name == "registry_manifest.yaml":
            continue
        for group in yaml.safe_load(path.read_text()).get("groups", []):
            if group["id"] in seen:
                raise ValueError(f"{path.name}: duplicate group id {group['id']}")
            seen.add(group["id"])
            _add(registry, group, path.name)
    return registry


def _add(registry: Registry, group: dict[str, Any], source: str) -> None:
    kind = group["type"]
    extra = group.get("annotations", {}).get("flights", {})
    attributes = group.get("attributes") or []
    levels = {_attr_name(a): _level(a)[0] for a in attributes}
    conditions = {_attr_name(a): _level(a)[1] for a in attributes if _level(a)[1]}
    notes = {_attr_name(a): str(a.get("note", "")).strip() for a in attributes if a.get("note")}
    common = {
        "id": group["id"],
        "brief": str(group.get("brief", "")).strip(),
        "note": str(group.get("note", "")).strip(),
        "services": list(extra.get("services", [])),
        "attributes": levels,
        "conditions": conditions,
        "notes": notes,
    }
    if kind == "attribute_group":
        for attribute in attributes:
            if "id" in attribute:
                registry.definitions[attribute["id"]] = attribute
        if group["id"] == "attributes.flights.log":
            registry.log_fields = levels
            registry.log_field_conditions = conditions
            registry.log_field_notes = notes
    elif kind == "entity":
        registry.resource = levels
        registry.resource_notes = notes
    elif kind == "span":
        names = extra["name"] if isinstance(extra["name"], list) else [extra["name"]]
        registry.spans.append(
            {**common, "kind": group["span_kind"].upper(), "name": names[0], "names": names}
        )
    elif kind == "metric":
        registry.metrics.append(
            {
                **common,
                "metric_name": group["metric_name"],
                "instrument": group["instrument"],
                "unit": group["unit"],
                "prometheus": {"buckets": None, **extra["prometheus"]},
            }
        )
    elif kind == "metric_group":
        for family in extra["prometheus_families"]:
            registry.metrics.append(
                {
                    **common,
                    "metric_name": "",
                    "instrument": family["type"],
                    "unit": "",
                    "prometheus": {**family, "buckets": family.get("buckets")},
                }
            )
    elif kind == "event":
        if group["name"] == "stdlib.record":
            registry.third_party = group
        else:
            registry.events[group["name"]] = {
                **common,
                "loggers": list(extra.get("loggers", [])),
                "levels": list(extra.get("levels", [])),
            }
    else:
        raise ValueError(f"{source}: group {group['id']} has an unknown type {kind!r}")


def render(registry: Registry) -> str:
    """`docs/observability.md` as the template renders it from `registry`."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATE.parent)),
        undefined=jinja2.StrictUndefined,  # a typo in the template fails, never renders ""
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # Markdown, not HTML
    )
    environment.filters["fields"] = _fields
    environment.filters["cell"] = _cell
    return environment.get_template(TEMPLATE.name).render(r=registry)


def _cell(text: str) -> str:
    """One Markdown table cell: a single line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _fields(attributes: dict[str, str], conditions: dict[str, str] | None = None) -> str:
    """`a`, `b` (if ...), ... for a table cell: required ones plain, others with their level."""
    parts = []
    for name, level in attributes.items():
        if level == "required":
            parts.append(f"`{name}`")
        elif level == "conditionally_required":
            parts.append(f"`{name}` ({(conditions or {}).get(name, 'when present')})")
        else:
            parts.append(f"`{name}` ({level.replace('_', '-')})")
    return _cell(", ".join(parts)) or "—"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when the page differs")
    args = parser.parse_args(argv)
    text = render(load())
    if args.check:
        if DOC.read_text() != text:
            print(
                f"{DOC.relative_to(ROOT)} differs from what telemetry/registry generates: "
                "run `python scripts/telemetry_registry.py` and commit the result",
                file=sys.stderr,
            )
            return 1
        return 0
    DOC.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
