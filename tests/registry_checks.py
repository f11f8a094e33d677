"""Hold real telemetry to the registry (telemetry/registry/, read by scripts/telemetry_registry.py).

Each `*_problems` function returns a list of human-readable problems (empty = conforms), so a
test can report every mismatch of a run at once. The same checks apply to both services.

- spans: a span must match a registry span of its service by kind and name pattern, carry
  every `required` attribute and no attribute the registry does not list; its resource too.
- metrics: every family of a `/metrics` scrape must be a registry metric of that service, of
  the same type, with exactly the registry's labels and (histograms) buckets, and a name that
  ends in the unit; every registry metric of the service must be in the scrape.
- log lines: the fields of every line; a registered event's own fields, logger and level; a
  line whose `event` is not a registered name must come from a third-party logger.
"""

from __future__ import annotations

import fnmatch
import math
import string
import sys
from typing import Any

from conftest import ROOT
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(ROOT / "scripts"))
import telemetry_registry

REGISTRY = telemetry_registry.load()
UNIT_SUFFIX = {"s": "_seconds", "By": "_bytes"}


def _required(attributes: dict[str, str]) -> set[str]:
    return {name for name, level in attributes.items() if level == "required"}


def _pattern_fields(pattern: str) -> list[str]:
    return [field for _, field, _, _ in string.Formatter().parse(pattern) if field]


def span_name(pattern: str, attributes: dict[str, Any]) -> str | None:
    """The name `pattern` gives a span with `attributes`; None when one it needs is missing."""
    values = {}
    for field in _pattern_fields(pattern):
        if field not in attributes:
            return None
        values[field] = attributes[field]
    text = pattern
    for field, value in values.items():
        text = text.replace("{" + field + "}", str(value))
    return text


def span_problems(service: str, kind: str, name: str, attributes: dict[str, Any]) -> list[str]:
    """Problems of one span (`kind` "SERVER"/"CLIENT"/..., `attributes` its attributes)."""
    candidates = [
        s
        for s in REGISTRY.spans
        if service in s["services"]
        and s["kind"] == kind
        and any(span_name(pattern, attributes) == name for pattern in s["names"])
    ]
    if not candidates:
        return [f"{service} {kind} span {name!r} matches no registry span ({sorted(attributes)})"]
    spec = candidates[0]
    problems = []
    missing = _required(spec["attributes"]) - set(attributes)
    if missing:
        problems.append(f"{service} span {name!r} ({spec['id']}) lacks required {sorted(missing)}")
    unknown = set(attributes) - set(spec["attributes"])
    if unknown:
        problems.append(f"{service} span {name!r} ({spec['id']}) has unlisted {sorted(unknown)}")
    return problems


def resource_problems(service: str, resource: dict[str, Any]) -> list[str]:
    problems = []
    missing = _required(REGISTRY.resource) - set(resource)
    if missing:
        problems.append(f"{service} resource lacks {sorted(missing)}")
    unknown = set(resource) - set(REGISTRY.resource)
    if unknown:
        problems.append(f"{service} resource has unlisted {sorted(unknown)}")
    return problems


def metric_problems(service: str, exposition: str) -> list[str]:
    """Problems of one `/metrics` scrape (the classic text format) of `service`."""
    specs = {m["prometheus"]["name"]: m for m in REGISTRY.metrics if service in m["services"]}
    problems = []
    seen = set()
    for family in text_string_to_metric_families(exposition):
        name = family.name + ("_total" if family.type == "counter" else "")
        spec = specs.get(name)
        if spec is None:
            problems.append(f"{service} exposes {name} ({family.type}): not in the registry")
            continue
        seen.add(name)
        prometheus = spec["prometheus"]
        if family.type != prometheus["type"]:
            problems.append(f"{service} {name} is a {family.type}, registry: {prometheus['type']}")
        suffix = UNIT_SUFFIX.get(spec["unit"])
        if suffix and not name.removesuffix("_total").endswith(suffix):
            problems.append(f"{service} {name}: unit {spec['unit']} but no {suffix} suffix")
        buckets = set()
        for sample in family.samples:
            labels = dict(sample.labels)
            if sample.name.endswith("_bucket"):
                bound = float(labels.pop("le"))
                if not math.isinf(bound):
                    buckets.add(bound)
            if set(labels) != set(prometheus["labels"]):
                problems.append(
                    f"{service} {sample.name} labels {sorted(labels)}, "
                    f"registry: {sorted(prometheus['labels'])}"
                )
                break
        if prometheus["type"] == "histogram" and buckets != {
            float(b) for b in prometheus["buckets"]
        }:
            problems.append(f"{service} {name} buckets {sorted(buckets)} != registry's")
    for name in sorted(set(specs) - seen):
        problems.append(f"{service}: registry metric {name} not in the scrape")
    return problems


def _third_party(logger: str) -> bool:
    return any(fnmatch.fnmatchcase(logger, pattern) for pattern in REGISTRY.third_party_loggers)


def log_problems(service: str, record: dict[str, Any]) -> list[str]:
    """Problems of one parsed JSON log line of `service`."""
    problems = []
    common = REGISTRY.log_fields
    missing = _required(common) - set(record)
    if missing:
        problems.append(f"{service} line lacks {sorted(missing)}: {record}")
    event, logger = str(record.get("event", "")), str(record.get("logger", ""))
    spec = REGISTRY.events.get(event)
    if spec is None:
        if not _third_party(logger):
            problems.append(f"{service} event {event!r} (logger {logger}) is not in the registry")
        unknown = set(record) - set(common)
        if unknown:
            problems.append(f"{service} third-party line has unlisted {sorted(unknown)}: {record}")
        return problems
    if service not in spec["services"]:
        problems.append(f"{service} writes {event!r}: registry says {spec['services']}")
    if logger not in spec["loggers"]:
        problems.append(f"{service} {event!r} from logger {logger}: registry {spec['loggers']}")
    if record.get("level") not in spec["levels"]:
        problems.append(f"{service} {event!r} at {record.get('level')}: registry {spec['levels']}")
    missing = _required(spec["attributes"]) - set(record)
    if missing:
        problems.append(f"{service} {event!r} lacks {sorted(missing)}: {record}")
    unknown = set(record) - set(common) - set(spec["attributes"])
    if unknown:
        problems.append(f"{service} {event!r} has unlisted {sorted(unknown)}: {record}")
    return problems
