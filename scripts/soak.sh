#!/usr/bin/env bash
# The soak test (what `make soak` runs; not part of `make test`): mixed Locust load for
# SOAK_DURATION (default 10m) against the production stack, with the resident memory of every
# process and the number of Prometheus multiprocess files printed as a series and judged flat.
# See scripts/soak.py for the settings. Exit 0 when flat.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
duration="${SOAK_DURATION:-10m}"
# A hard limit around it: the load, plus set-up and shutdown.
limit="$(.venv/bin/python -c 'import sys; sys.path.insert(0, "scripts"); import soak; print(soak.seconds_of(sys.argv[1]) + 600)' "$duration")"
exec timeout --kill-after=30 "$limit" .venv/bin/python scripts/soak.py
