"""DuckDB time per named query during a load-test run, from two scrapes of the backend's /metrics.

Usage: ``python loadtests/duckdb_report.py BEFORE.txt AFTER.txt`` (Prometheus text format).

Reads ``duckdb_query_duration_seconds`` (histogram, labels ``query`` and ``outcome``) with
prometheus_client's own text parser, subtracts the first scrape from the second and prints,
per query: calls, errors, total seconds, share of all DuckDB time, mean and an upper bound of
the p95 (the histogram bucket that holds it). Exit code 0, or 1 when a file cannot be read.
"""

from __future__ import annotations

import math
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

METRIC = "duckdb_query_duration_seconds"


@dataclass
class QueryTotals:
    count: float = 0.0
    seconds: float = 0.0
    errors: float = 0.0
    # upper bound "le" -> cumulative count, summed over outcomes
    buckets: dict[float, float] = field(default_factory=lambda: defaultdict(float))


def read_histogram(text: str) -> dict[str, QueryTotals]:
    """Per-query totals of the DuckDB histogram in one scrape (outcomes summed)."""
    totals: dict[str, QueryTotals] = defaultdict(QueryTotals)
    for family in text_string_to_metric_families(text):
        if family.name != METRIC:
            continue
        for sample in family.samples:
            query = sample.labels.get("query", "")
            entry = totals[query]
            if sample.name == METRIC + "_count":
                entry.count += sample.value
                if sample.labels.get("outcome") == "error":
                    entry.errors += sample.value
            elif sample.name == METRIC + "_sum":
                entry.seconds += sample.value
            elif sample.name == METRIC + "_bucket":
                entry.buckets[float(sample.labels["le"])] += sample.value
    return dict(totals)


def delta(before: dict[str, QueryTotals], after: dict[str, QueryTotals]) -> dict[str, QueryTotals]:
    """after - before, per query; queries without calls in between are left out."""
    result: dict[str, QueryTotals] = {}
    for query, a in after.items():
        b = before.get(query, QueryTotals())
        d = QueryTotals(a.count - b.count, a.seconds - b.seconds, a.errors - b.errors)
        for le, value in a.buckets.items():
            d.buckets[le] = value - b.buckets.get(le, 0.0)
        if d.count > 0:
            result[query] = d
    return result


def p95_upper_bound(buckets: dict[float, float], count: float) -> float:
    """The upper bound (seconds) of the bucket that holds the 95th percentile."""
    rank = 0.95 * count
    for le in sorted(buckets):
        if buckets[le] >= rank:
            return le
    return math.inf


def format_report(per_query: dict[str, QueryTotals]) -> str:
    if not per_query:
        return f"DuckDB per named query: no {METRIC} samples changed during the run"
    total_seconds = sum(q.seconds for q in per_query.values()) or 1e-12
    header = ("query", "calls", "errors", "total s", "share", "mean ms", "p95 <= ms")
    rows = []
    for name, q in sorted(per_query.items(), key=lambda item: -item[1].seconds):
        p95 = p95_upper_bound(q.buckets, q.count)
        rows.append(
            (
                name or "(no query label)",
                f"{q.count:,.0f}",
                f"{q.errors:,.0f}",
                f"{q.seconds:,.3f}",
                f"{q.seconds / total_seconds:.1%}",
                f"{q.seconds / q.count * 1000:,.2f}",
                "inf" if math.isinf(p95) else f"{p95 * 1000:,.1f}",
            )
        )
    calls = sum(q.count for q in per_query.values())
    rows.append(("TOTAL", f"{calls:,.0f}", "", f"{total_seconds:,.3f}", "100%", "", ""))
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def fmt(r: tuple[str, ...]) -> str:
        rest = [v.rjust(w) for v, w in zip(r[1:], widths[1:], strict=True)]
        return "  ".join([r[0].ljust(widths[0]), *rest])

    line = "-" * len(fmt(header))
    title = "DuckDB time per named query during the run (delta of duckdb_query_duration_seconds)"
    return "\n".join([title, line, fmt(header), line, *map(fmt, rows[:-1]), line, fmt(rows[-1])])


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        before, after = (read_histogram(Path(p).read_text(encoding="utf-8")) for p in argv[1:])
    except (OSError, ValueError) as exc:
        print(f"duckdb_report: {exc}", file=sys.stderr)
        return 1
    print(format_report(delta(before, after)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
