"""Where a service's time goes under load: py-spy's raw samples summed by what they were doing.

`bench/run.py` with `BENCH_PROFILE=on,off` records, after each scenario's measured rounds, one
more window of that scenario per named stack with `py-spy record --nonblocking -f raw`
attached to the service the scenario loads (the gunicorn master with `--subprocesses` for the
frontend), writes the raw samples to `reports/profiles/` and puts a table of the shares below
into the report. Also a command: `python bench/profiles.py reports/profiles/*.txt` prints the
same shares for files recorded by hand.

Each sample (one stack of one thread, active at that moment: py-spy leaves idle threads out)
goes to the first category of `CATEGORIES` one of whose markers appears in any of its frames,
else to `rest` (the framework, the server, the view). The markers are file paths as py-spy
prints them (relative to site-packages or to the service's folder) and function names.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

# (category, markers), first match wins.
CATEGORIES: list[tuple[str, tuple[str, ...]]] = [
    # Ours (both services), and the peer's zero-code ASGI/FastAPI instrumentation; first, so
    # that the request thread's span end (the batch processor's on_end) is counted here.
    ("server span", ("start_server_span", "server_spans.py", "instrumentation/asgi/",
                     "instrumentation/fastapi/")),
    # The batch processor's thread: OTLP encoding (ours or the library's) and the HTTP post.
    ("span export", ("span_encoding.py", "sdk/trace/export/", "opentelemetry/exporter/",
                     "requests/", "urllib3/")),
    # Every log line (structlog, the stdlib's logging, uvicorn's access log of the peer); on
    # the hot paths nearly all of them are access lines.
    ("logs", ("structlog/", "observability/logging.py", "uvicorn/logging.py",
              "logging/__init__.py")),
    ("HTTP metrics", ("prometheus_client/", "observability/metrics.py",
                      "prometheus_fastapi_instrumentator/")),
    # What is left of OpenTelemetry: DuckDB statement spans, httpx client spans, context.
    ("other OpenTelemetry", ("opentelemetry/", "observability/database.py",
                             "observability/backend_calls.py")),
    # The statement's execute and fetch (DuckDB's own threads have no Python frames).
    ("DuckDB", ("run_query (api/db/database.py",)),
    ("templates", ("jinja2/",)),
]  # fmt: skip
REST = "rest"
COLUMNS = [name for name, _ in CATEGORIES] + [REST]


def summarize(path: Path) -> tuple[int, dict[str, float]]:
    """`(samples, {category: share in %})` of a py-spy raw file (`stack count` per line; the
    frames separated by `;`). Every category of `COLUMNS` is in the dict, 0.0 when unseen;
    `(0, all 0.0)` for an empty file."""
    counts: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, number = line.rpartition(" ")
        if not stack or not number.isdigit():
            continue
        samples = int(number)
        total += samples
        category = next(
            (name for name, markers in CATEGORIES if any(m in stack for m in markers)), REST
        )
        counts[category] += samples
    return total, {name: (100.0 * counts[name] / total if total else 0.0) for name in COLUMNS}


def table(rows: list[tuple[str, str, str, int, dict[str, float]]]) -> str:
    """A Markdown table of `(scenario, stack, service, samples, shares)` rows."""
    head = "| scenario | stack | service | samples | " + " | ".join(COLUMNS) + " |"
    rule = "|" + "---|" * (4 + len(COLUMNS))
    lines = [head, rule]
    for scenario, stack, service, samples, shares in rows:
        cells = " | ".join(f"{shares[name]:.1f} %" for name in COLUMNS)
        lines.append(f"| {scenario} | {stack} | {service} | {samples:,} | {cells} |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    rows = []
    for name in argv:
        samples, shares = summarize(Path(name))
        rows.append((Path(name).stem, "", "", samples, shares))
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
