"""The load-test gate: pass/fail from whole-run Locust statistics, computed in-process.

The locustfile calls :func:`register`, which adds a ``quitting`` listener. When the run ends the
listener reads ``environment.stats`` (the whole run, not a sliding window), checks it against
the thresholds file, prints one table row per check and sets ``environment.process_exit_code``:
1 when any check failed, 0 otherwise. Setting 0 on a pass is deliberate: without it Locust exits
1 on the first failed request, and the allowed failure ratio is the thresholds file's call.

Thresholds come from ``loadtests/thresholds.toml`` or from the file named by the environment
variable ``LOADTEST_THRESHOLDS``. Endpoints are keyed ``"METHOD name"``, where ``name`` is the
request name the locustfile gives (a route template such as ``/flights/[id]``).

Times are milliseconds, throughput is requests per second.
"""

from __future__ import annotations

import math
import os
import sys
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:  # importing locust monkey-patches the process with gevent: typing only
    from locust.stats import RequestStats

DEFAULT_THRESHOLDS = Path(__file__).resolve().parent / "thresholds.toml"
THRESHOLDS_ENV = "LOADTEST_THRESHOLDS"


class ThresholdsError(ValueError):
    """The thresholds file is missing, not TOML, or holds an invalid value."""


@dataclass(frozen=True)
class Thresholds:
    """Service-level limits for one run (see thresholds.toml for the meaning of each)."""

    max_fail_ratio: float
    min_total_rps: float
    default_p95_ms: float
    p95_ms: dict[str, float] = field(default_factory=dict)
    # Endpoints listed in p95_ms that may see no request in a short run (rare writes).
    optional: frozenset[str] = frozenset()
    min_requests: int = 1
    max_locustfile_exceptions: int = 0


@dataclass(frozen=True)
class Check:
    """One row of the gate table."""

    name: str
    measured: str
    limit: str
    passed: bool


@dataclass(frozen=True)
class GateResult:
    checks: list[Check]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]


def _number(table: dict[str, Any], key: str, where: str, default: Any = None) -> float:
    value = table.get(key, default)
    if value is None:
        raise ThresholdsError(f"{where}: '{key}' is required")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ThresholdsError(f"{where}: '{key}' must be a finite number, got {value!r}")
    if value < 0:
        raise ThresholdsError(f"{where}: '{key}' must not be negative, got {value!r}")
    return float(value)


def thresholds_path() -> Path:
    """The thresholds file of this run: ``$LOADTEST_THRESHOLDS`` or loadtests/thresholds.toml."""
    return Path(os.environ.get(THRESHOLDS_ENV) or DEFAULT_THRESHOLDS)


def load_thresholds(path: Path | None = None) -> Thresholds:
    """Read and validate a thresholds file; raises ThresholdsError naming the problem."""
    path = path or thresholds_path()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ThresholdsError(f"cannot read thresholds file {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ThresholdsError(f"{path} is not valid TOML: {exc}") from exc
    where = str(path)
    p95_table = data.get("p95_ms", {})
    if not isinstance(p95_table, dict):
        raise ThresholdsError(f"{where}: [p95_ms] must be a table")
    p95 = {name: _number(p95_table, name, f"{where} [p95_ms]") for name in p95_table}
    optional = data.get("optional", [])
    if not isinstance(optional, list) or not all(isinstance(o, str) for o in optional):
        raise ThresholdsError(f"{where}: 'optional' must be a list of endpoint names")
    unknown = sorted(set(optional) - set(p95))
    if unknown:
        raise ThresholdsError(f"{where}: 'optional' names endpoints not in [p95_ms]: {unknown}")
    max_fail_ratio = _number(data, "max_fail_ratio", where)
    if max_fail_ratio > 1:
        raise ThresholdsError(f"{where}: 'max_fail_ratio' is a ratio in 0..1")
    return Thresholds(
        max_fail_ratio=max_fail_ratio,
        min_total_rps=_number(data, "min_total_rps", where),
        default_p95_ms=_number(data, "default_p95_ms", where),
        p95_ms=p95,
        optional=frozenset(optional),
        min_requests=int(_number(data, "min_requests", where, default=1)),
        max_locustfile_exceptions=int(_number(data, "max_locustfile_exceptions", where, default=0)),
    )


def _fmt_ms(value: float) -> str:
    return f"{value:,.0f} ms" if value >= 10 else f"{value:g} ms"


def evaluate(
    stats: RequestStats, thresholds: Thresholds, locustfile_exceptions: int = 0
) -> GateResult:
    """Check whole-run statistics against the thresholds; one Check per limit.

    - failure ratio of all requests <= max_fail_ratio (and at least min_requests requests);
    - throughput over the whole run (Locust's ``total_rps``) >= min_total_rps;
    - p95 of every endpoint that saw requests <= its limit in [p95_ms], else default_p95_ms;
    - every endpoint in [p95_ms] saw a request, unless listed in ``optional``: a gate that
      passes because a page was never measured (say, a broken link parser) proves nothing;
    - exceptions raised by the locustfile itself <= max_locustfile_exceptions.
    """
    total = stats.total
    checks = [
        Check(
            "requests (whole run)",
            f"{total.num_requests:,}",
            f">= {thresholds.min_requests:,}",
            total.num_requests >= thresholds.min_requests,
        ),
        Check(
            "failure ratio",
            f"{total.fail_ratio:.4f} ({total.num_failures:,} failed)",
            f"<= {thresholds.max_fail_ratio:g}",
            total.num_requests > 0 and total.fail_ratio <= thresholds.max_fail_ratio,
        ),
        Check(
            "throughput (req/s)",
            f"{total.total_rps:,.1f}",
            f">= {thresholds.min_total_rps:g}",
            total.total_rps >= thresholds.min_total_rps,
        ),
    ]
    seen: set[str] = set()
    for (name, method), entry in sorted(stats.entries.items()):
        key = f"{method} {name}"
        if entry.num_requests == 0:
            continue
        seen.add(key)
        limit = thresholds.p95_ms.get(key, thresholds.default_p95_ms)
        p95 = entry.get_response_time_percentile(0.95) or 0
        source = "" if key in thresholds.p95_ms else " (default)"
        checks.append(
            Check(
                f"p95 {key} (n={entry.num_requests:,})",
                _fmt_ms(p95),
                f"<= {_fmt_ms(limit)}{source}",
                p95 <= limit,
            )
        )
    for key in sorted(set(thresholds.p95_ms) - seen - thresholds.optional):
        checks.append(Check(f"exercised {key}", "0 requests", ">= 1 request", False))
    checks.append(
        Check(
            "locustfile exceptions",
            str(locustfile_exceptions),
            f"<= {thresholds.max_locustfile_exceptions}",
            locustfile_exceptions <= thresholds.max_locustfile_exceptions,
        )
    )
    return GateResult(checks)


def format_table(result: GateResult, title: str = "Load-test gate") -> str:
    """A plain-text table: one line per check with PASS/FAIL, measured value and limit."""
    rows = [("", "check", "measured", "limit")]
    rows += [("PASS" if c.passed else "FAIL", c.name, c.measured, c.limit) for c in result.checks]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    line = "-" * (sum(widths) + 9)

    def fmt(r: Iterable[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()

    verdict = (
        "GATE PASSED"
        if result.passed
        else f"GATE FAILED: {len(result.failures)} of {len(result.checks)} checks failed"
    )
    body = [fmt(r) for r in rows[1:]]
    return "\n".join([line, title, line, fmt(rows[0]), line, *body, line, verdict, line])


def on_quitting(environment: Any, out: TextIO | None = None, **_kwargs: Any) -> None:
    """``events.quitting`` listener: evaluate, print the table, set the process exit code."""
    out = out or sys.stdout
    path = thresholds_path()
    try:
        thresholds = load_thresholds(path)
    except ThresholdsError as exc:
        print(f"GATE FAILED: {exc}", file=out, flush=True)
        environment.process_exit_code = 1
        return
    runner = getattr(environment, "runner", None)
    exceptions = sum(e["count"] for e in getattr(runner, "exceptions", {}).values())
    result = evaluate(environment.stats, thresholds, locustfile_exceptions=exceptions)
    print(format_table(result, f"Load-test gate ({path})"), file=out, flush=True)
    environment.process_exit_code = 0 if result.passed else 1


def register(events: Any) -> None:
    """Add the gate to a Locust ``events`` hook set (call once, from the locustfile)."""
    events.quitting.add_listener(on_quitting)
