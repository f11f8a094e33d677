"""The load-test gate: pass/fail from whole-run Locust statistics, normalised for the machine.

Every latency and throughput figure of the real stack is judged *relative to* the calibration
stack (calibration.py), which runs beside it in the same run, under the same Locust processes
and the same machine load, but runs none of our code. A machine that is slower or busier slows
both, and their ratio stays; a project that got slower moves only its own side. How to read
and tune it: loadtests/README.md.

The locustfile calls :func:`register`, which adds a ``quitting`` listener. When the run ends the
listener reads ``environment.stats`` (the whole run, all Locust processes combined: with
``--processes`` only the master evaluates), checks it against the thresholds file, prints one
table row per check and sets ``environment.process_exit_code``: 1 when any check failed, 0
otherwise (without the explicit 0 Locust exits 1 on the first failed request; the allowed
failure ratio is the thresholds file's call).

Checks:

- hard limits that do not depend on speed: enough requests, failure ratio of the real
  requests, every listed endpoint exercised, no locustfile exceptions, and a calibration that
  really ran (enough requests, none failed: otherwise nothing can be normalised);
- normalised latency, per endpoint: its median (p50) and its p95, each divided by the same
  percentile of the calibration request of its tier (``/api/...`` endpoints by the
  calibration API, pages by the calibration page), against the endpoint's limits in
  ``[limits]`` (else the defaults). The median is the sensitive check; the p95 guards the
  tail. Each is judged only from ``min_samples_p50`` / ``min_samples_p95`` requests on: below
  that a rare endpoint's median is a coin toss between cache hits and misses, and its p95 is
  little more than its slowest request (both are still shown);
- normalised throughput: real requests per second per real user, divided by the calibration's
  per calibration user, against ``min_throughput_ratio``.

Thresholds come from ``loadtests/thresholds.toml`` or the file named by ``LOADTEST_THRESHOLDS``.
Endpoints are keyed ``"METHOD name"`` with the request names of the locustfile (route
templates such as ``/flights/[id]``). Times are milliseconds; ratios have no unit.
"""

from __future__ import annotations

import math
import os
import sys
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:  # importing locust monkey-patches the process with gevent: typing only
    from locust.stats import RequestStats, StatsEntry

# Request names of the calibration users (locustfile.py); their user classes' names start with
# CALIBRATION_CLASS_PREFIX. Never judged as endpoints.
CALIBRATION_PAGE = "/calibration/page"
CALIBRATION_API = "/calibration/api"
CALIBRATION_CLASS_PREFIX = "Calibration"

DEFAULT_THRESHOLDS = Path(__file__).resolve().parent / "thresholds.toml"
THRESHOLDS_ENV = "LOADTEST_THRESHOLDS"


class ThresholdsError(ValueError):
    """The thresholds file is missing, not TOML, or holds an invalid value."""


@dataclass(frozen=True)
class Limit:
    """The normalised latency limits of one endpoint: p50 and p95 ratios to the calibration."""

    p50: float
    p95: float


@dataclass(frozen=True)
class Thresholds:
    """Limits for one run (thresholds.toml explains each; ratios have no unit)."""

    max_fail_ratio: float
    default_limit: Limit
    min_throughput_ratio: float
    limits: dict[str, Limit] = field(default_factory=dict)
    # Endpoints listed in limits that may see no request in a short run (rare writes).
    optional: frozenset[str] = frozenset()
    min_requests: int = 1
    min_calibration_requests: int = 1
    min_samples_p50: int = 20
    min_samples_p95: int = 40
    max_locustfile_exceptions: int = 0


@dataclass(frozen=True)
class Check:
    """One row of the gate table. `calibration` and `normalised` are empty for hard limits."""

    name: str
    measured: str
    limit: str
    passed: bool
    calibration: str = ""
    normalised: str = ""


@dataclass(frozen=True)
class GateResult:
    """Every check of one run, in table order."""

    checks: list[Check]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]


def _number(table: Mapping[str, Any], key: str, where: str, default: Any = None) -> float:
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
    for old in ("p95_ms", "default_p95_ms", "min_total_rps"):
        if old in data:
            raise ThresholdsError(
                f"{where}: '{old}' is an absolute limit of the old gate; limits are now ratios "
                "to the calibration ([limits], default_limit, min_throughput_ratio; "
                "loadtests/README.md)"
            )
    table = data.get("limits", {})
    if not isinstance(table, dict):
        raise ThresholdsError(f"{where}: [limits] must be a table")
    limits = {name: _limit(table[name], f"{where} [limits] {name!r}") for name in table}
    optional = data.get("optional", [])
    if not isinstance(optional, list) or not all(isinstance(o, str) for o in optional):
        raise ThresholdsError(f"{where}: 'optional' must be a list of endpoint names")
    unknown = sorted(set(optional) - set(limits))
    if unknown:
        raise ThresholdsError(f"{where}: 'optional' names endpoints not in [limits]: {unknown}")
    max_fail_ratio = _number(data, "max_fail_ratio", where)
    if max_fail_ratio > 1:
        raise ThresholdsError(f"{where}: 'max_fail_ratio' is a ratio in 0..1")
    if "default_limit" not in data:
        raise ThresholdsError(f"{where}: 'default_limit' is required")
    return Thresholds(
        max_fail_ratio=max_fail_ratio,
        default_limit=_limit(data["default_limit"], f"{where} default_limit"),
        min_throughput_ratio=_number(data, "min_throughput_ratio", where),
        limits=limits,
        optional=frozenset(optional),
        min_requests=int(_number(data, "min_requests", where, default=1)),
        min_calibration_requests=int(_number(data, "min_calibration_requests", where, default=1)),
        min_samples_p50=int(_number(data, "min_samples_p50", where, default=20)),
        min_samples_p95=int(_number(data, "min_samples_p95", where, default=40)),
        max_locustfile_exceptions=int(_number(data, "max_locustfile_exceptions", where, default=0)),
    )


def _limit(value: Any, where: str) -> Limit:
    if not isinstance(value, dict) or set(value) != {"p50", "p95"}:
        raise ThresholdsError(f"{where}: must be a table {{ p50 = <ratio>, p95 = <ratio> }}")
    return Limit(p50=_number(value, "p50", where), p95=_number(value, "p95", where))


def _fmt_ms(value: float) -> str:
    return f"{value:,.0f} ms" if value >= 10 else f"{value:.3g} ms"


def calibration_of(name: str) -> str:
    """The calibration request name an endpoint is normalised by (its tier)."""
    return CALIBRATION_API if name.startswith("/api/") else CALIBRATION_PAGE


@dataclass
class _Totals:
    requests: int = 0
    failures: int = 0


def evaluate(
    stats: RequestStats,
    thresholds: Thresholds,
    locustfile_exceptions: int = 0,
    users: Mapping[str, int] | None = None,
) -> GateResult:
    """Check whole-run statistics against the thresholds; one Check per limit (module doc).

    `users` maps user class names to how many ran (``runner.final_user_classes_count``);
    classes whose name starts with ``Calibration`` are the calibration's. Without it (or
    without calibration users) the throughput check compares plain requests per second.
    """
    real = _Totals()
    calibration_entries: dict[str, StatsEntry] = {}
    endpoints: list[tuple[str, str, StatsEntry]] = []
    for (name, method), entry in sorted(stats.entries.items()):
        if entry.num_requests == 0:
            continue
        if name in (CALIBRATION_PAGE, CALIBRATION_API):
            calibration_entries[name] = entry
            continue
        real.requests += entry.num_requests
        real.failures += entry.num_failures
        endpoints.append((f"{method} {name}", name, entry))

    checks = [
        Check(
            "requests (whole run)",
            f"{real.requests:,}",
            f">= {thresholds.min_requests:,}",
            real.requests >= thresholds.min_requests,
        )
    ]
    ratio = real.failures / real.requests if real.requests else 1.0
    checks.append(
        Check(
            "failure ratio",
            f"{ratio:.4f} ({real.failures:,} failed)",
            f"<= {thresholds.max_fail_ratio:g}",
            real.requests > 0 and ratio <= thresholds.max_fail_ratio,
        )
    )
    calibration_ok = True
    for name in (CALIBRATION_PAGE, CALIBRATION_API):
        entry = calibration_entries.get(name)
        count = entry.num_requests if entry else 0
        failed = entry.num_failures if entry else 0
        ok = count >= thresholds.min_calibration_requests and failed == 0
        calibration_ok = calibration_ok and ok
        checks.append(
            Check(
                f"calibration GET {name}",
                f"{count:,} requests, {failed:,} failed",
                f">= {thresholds.min_calibration_requests:,}, 0 failed",
                ok,
            )
        )

    checks.append(_throughput_check(stats, thresholds, calibration_entries, users))

    seen: set[str] = set()
    for key, name, entry in endpoints:
        seen.add(key)
        reference = calibration_entries.get(calibration_of(name)) if calibration_ok else None
        checks.append(_latency_check(key, entry, reference, thresholds))
    for key in sorted(set(thresholds.limits) - seen - thresholds.optional):
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


def _percentiles(entry: StatsEntry) -> tuple[float, float]:
    return (
        entry.get_response_time_percentile(0.5) or 0.0,
        entry.get_response_time_percentile(0.95) or 0.0,
    )


def _latency_check(
    key: str, entry: StatsEntry, reference: StatsEntry | None, thresholds: Thresholds
) -> Check:
    """p50 and p95 of one endpoint against its limits, relative to `reference` (module doc)."""
    limit = thresholds.limits.get(key, thresholds.default_limit)
    source = "" if key in thresholds.limits else " (default)"
    p50, p95 = _percentiles(entry)
    judge_p50 = entry.num_requests >= thresholds.min_samples_p50
    judge_p95 = entry.num_requests >= thresholds.min_samples_p95
    name = f"{key} (n={entry.num_requests:,})"
    measured = f"{_fmt_ms(p50)} / {_fmt_ms(p95)}"
    ref50, ref95 = _percentiles(reference) if reference is not None else (0.0, 0.0)
    if ref50 <= 0 or ref95 <= 0:
        return Check(name, measured, f"<= {limit.p50:g}x / {limit.p95:g}x{source}", False,
                     "none", "cannot judge")  # fmt: skip
    r50, r95 = p50 / ref50, p95 / ref95
    passed = (r50 <= limit.p50 or not judge_p50) and (r95 <= limit.p95 or not judge_p95)
    n50, n95 = thresholds.min_samples_p50, thresholds.min_samples_p95
    p50_limit = f"{limit.p50:g}x" if judge_p50 else f"({limit.p50:g}x: n < {n50})"
    p95_limit = f"{limit.p95:g}x" if judge_p95 else f"({limit.p95:g}x: n < {n95})"
    return Check(
        name,
        measured,
        # Also as it reads at this machine's speed right now: what "too slow" meant here.
        f"<= {p50_limit} / {p95_limit} = {_fmt_ms(limit.p50 * ref50)} / "
        f"{_fmt_ms(limit.p95 * ref95)}{source}",
        passed,
        calibration=f"{_fmt_ms(ref50)} / {_fmt_ms(ref95)}",
        normalised=f"{r50:.2f}x / {r95:.2f}x",
    )


def _throughput_check(
    stats: RequestStats,
    thresholds: Thresholds,
    calibration_entries: Mapping[str, StatsEntry],
    users: Mapping[str, int] | None,
) -> Check:
    """Real req/s per real user over calibration req/s per calibration user (whole run)."""
    total = stats.total
    # Locust's own whole-run window (total_rps uses the same): first start to last request.
    seconds = max((total.last_request_timestamp or total.start_time) - total.start_time, 1e-9)
    calibration_requests = sum(e.num_requests for e in calibration_entries.values())
    real_rps = (total.num_requests - calibration_requests) / seconds
    calibration_rps = calibration_requests / seconds
    users = users or {}
    calibration_users = sum(n for c, n in users.items() if c.startswith(CALIBRATION_CLASS_PREFIX))
    real_users = sum(users.values()) - calibration_users
    unit = "req/s"
    if real_users > 0 and calibration_users > 0:
        real_rps, calibration_rps, unit = (
            real_rps / real_users,
            calibration_rps / calibration_users,
            "req/s per user",
        )
    if calibration_rps <= 0:
        return Check("throughput", f"{real_rps:.2f} {unit}", "", False, "none", "cannot judge")
    normalised = real_rps / calibration_rps
    return Check(
        "throughput",
        f"{real_rps:.2f} {unit}",
        f">= {thresholds.min_throughput_ratio:g}x",
        normalised >= thresholds.min_throughput_ratio,
        calibration=f"{calibration_rps:.2f} {unit}",
        normalised=f"{normalised:.2f}x",
    )


def format_table(result: GateResult, title: str = "Load-test gate") -> str:
    """A plain-text table: one line per check with PASS/FAIL, measured value, calibration,
    normalised value and limit; then a line per failure saying what got slower by how much."""
    header = ("", "check", "measured", "calibration", "normalised", "limit")
    rows = [header]
    rows += [
        ("PASS" if c.passed else "FAIL", c.name, c.measured, c.calibration, c.normalised, c.limit)
        for c in result.checks
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    line = "-" * (sum(widths) + 2 * (len(widths) - 1))

    def fmt(r: Iterable[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()

    verdict = (
        "GATE PASSED"
        if result.passed
        else f"GATE FAILED: {len(result.failures)} of {len(result.checks)} checks failed"
    )
    why = [f"  {_explain(c)}" for c in result.failures]
    body = [fmt(r) for r in rows[1:]]
    return "\n".join([line, title, line, fmt(rows[0]), line, *body, line, verdict, *why, line])


def _explain(check: Check) -> str:
    if " / " in check.measured and check.normalised.endswith("x"):
        return (
            f"{check.name}: p50 / p95 {check.measured} are {check.normalised} the calibration's "
            f"{check.calibration} in this run; limits {check.limit.removeprefix('<= ')}"
        )
    if check.normalised.endswith("x"):
        return (
            f"{check.name}: {check.measured} is {check.normalised} the calibration's "
            f"{check.calibration}; limit {check.limit}"
        )
    return f"{check.name}: {check.measured}, limit {check.limit}"


def on_quitting(environment: Any, out: TextIO | None = None, **_kwargs: Any) -> None:
    """``events.quitting`` listener: evaluate, print the table, set the process exit code.

    In a Locust worker process (``--processes``) it does nothing: the master holds the
    combined statistics and evaluates them once.
    """
    runner = getattr(environment, "runner", None)
    if type(runner).__name__ == "WorkerRunner":
        return
    out = out or sys.stdout
    path = thresholds_path()
    try:
        thresholds = load_thresholds(path)
    except ThresholdsError as exc:
        print(f"GATE FAILED: {exc}", file=out, flush=True)
        environment.process_exit_code = 1
        return
    exceptions = sum(e["count"] for e in getattr(runner, "exceptions", {}).values())
    users = getattr(runner, "final_user_classes_count", None) or None
    result = evaluate(environment.stats, thresholds, exceptions, users)
    print(format_table(result, f"Load-test gate ({path})"), file=out, flush=True)
    environment.process_exit_code = 0 if result.passed else 1


def register(events: Any) -> None:
    """Add the gate to a Locust ``events`` hook set (call once, from the locustfile)."""
    events.quitting.add_listener(on_quitting)
