#!/usr/bin/env bash
# The load-test gate (what `make loadtest` runs). Starts the whole stack with its production
# servers on free loopback ports over a throw-away copy of the demo database, and beside it the
# calibration stack (loadtests/calibration.py: the same servers, none of our code); runs Locust
# headless against both at the same time, prints the gate table (loadtests/gate.py: every
# latency and throughput figure judged relative to the calibration's) and the DuckDB time per
# named query, stops everything and exits with Locust's exit code (0 = gate passed).
# How the gate works and how to read a failure: loadtests/README.md.
#
# Environment (all optional):
#   LOADTEST_USERS=20        concurrent users of the real stack (BrowserUser:ApiUser = 4:1)
#   LOADTEST_CALIBRATION_USERS=5  users of the calibration stack (added to LOADTEST_USERS)
#   LOADTEST_SPAWN_RATE=10   users started per second
#   LOADTEST_DURATION=60s    run time (Locust syntax: 30s, 2m, 1m30s)
#   LOADTEST_PROCESSES=1     Locust processes (>1: Locust's --processes, one master and N
#                            workers; the gate is computed once, on the master, from the
#                            combined whole-run statistics)
#   LOADTEST_TIMEOUT=<s>     hard limit for Locust in seconds (default: duration + 120)
#   LOADTEST_THRESHOLDS=...  thresholds file (default loadtests/thresholds.toml)
#   LOADTEST_REPORTS=...     report folder (default reports/, ignored by git)
# For the gate's self-tests (tests/test_loadtest_gate.py) and drills:
#   LOADTEST_FAULTS=<json>   FAULT_INJECTION for the backend (backend/api/faults.py); the
#                            backend then runs with APP_ENV=development, which faults need
#   LOADTEST_BACKEND_PREFIX="cmd args"  command the backend is started under (e.g. one that
#                            moves itself into a CPU-limited cgroup, then execs the rest)
# Reports: <reports>/loadtest.html, loadtest_*.csv, loadtest-duckdb.txt, metrics before/after,
# the service logs and loadtest-*.pid (pids of the four servers while they run).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

users="${LOADTEST_USERS:-20}"
spawn_rate="${LOADTEST_SPAWN_RATE:-10}"
duration="${LOADTEST_DURATION:-60s}"
calibration_users="${LOADTEST_CALIBRATION_USERS:-5}"
processes="${LOADTEST_PROCESSES:-1}"
reports="${LOADTEST_REPORTS:-$root/reports}"
py="$root/.venv/bin/python"
locust="$root/.venv/bin/locust"

for exe in "$py" "$locust" backend/.venv/bin/python backend/.venv/bin/uvicorn \
  frontend/.venv/bin/gunicorn; do
  if [ ! -x "$exe" ]; then
    echo "loadtest: $exe is missing; run 'scripts/bootstrap.sh test' (make loadtest does)" >&2
    exit 2
  fi
done

# Locust's -t syntax (1h2m3s) in seconds, for the hard timeout around it.
duration_s="$("$py" - "$duration" <<'PY'
import re, sys
text = sys.argv[1].strip()
parts = re.fullmatch(r"(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s?)?", text)
if not text or parts is None:
    sys.exit(f"loadtest: LOADTEST_DURATION={text!r} is not like 60s, 2m or 1m30s")
h, m, s = (int(p or 0) for p in parts.groups())
print(h * 3600 + m * 60 + s)
PY
)"
hard_timeout="${LOADTEST_TIMEOUT:-$((duration_s + 120))}"

# The demo database template is cached in reports/.cache whatever LOADTEST_REPORTS says (the
# self-tests use a report folder per run; building the template costs seconds).
cache="$root/reports/.cache"
mkdir -p "$reports" "$cache"
work="$(mktemp -d "${TMPDIR:-/tmp}/loadtest.XXXXXX")"
pids=()
# shellcheck disable=SC2317  # invoked by the EXIT trap
stop() {
  local code=$?
  trap - EXIT INT TERM
  # Frontend first, then the backend (it CHECKPOINTs on SIGTERM). Kill what outlives 30 s.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    local pid="${pids[$i]}"
    kill -TERM "$pid" 2>/dev/null || continue
    for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
  exit "$code"
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
  "$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_ready() { # $1 = name, $2 = pid, $3 = base URL, $4 = probe path (default /readyz)
  for _ in $(seq 1 600); do
    if curl -fsS -o /dev/null --max-time 2 "$3${4:-/readyz}" 2>/dev/null; then return 0; fi
    if ! kill -0 "$2" 2>/dev/null; then
      echo "loadtest: the $1 exited before it was ready; last lines of its log:" >&2
      tail -n 30 "$reports/loadtest-$1.log" >&2 || true
      exit 1
    fi
    sleep 0.2
  done
  echo "loadtest: the $1 was not ready after 120 s" >&2
  exit 1
}

# --- the database: a template built once (rebuilt when the loading code changes), copied per run
template="$cache/demo-template.db"
if [ ! -f "$template" ] || [ -n "$(find backend/api -newer "$template" -name '*.py' -o -newer "$template" -name '*.sql' | head -n 1)" ]; then
  echo "loadtest: building the demo database template"
  rm -f "$template" "$template.wal" "$work/template.db"
  (cd backend && DATABASE_PATH="$work/template.db" LOG_LEVEL=WARNING \
    .venv/bin/python -m api load-demo-data >"$work/load.log" 2>&1) || {
    cat "$work/load.log" >&2
    exit 1
  }
  mv "$work/template.db" "$template.$$" && mv "$template.$$" "$template" # atomic for parallel runs
fi
cp "$template" "$work/app.db"

# --- the stack, as in production: uvicorn (one process), gunicorn (WEB_CONCURRENCY workers)
ports=()
while [ ${#ports[@]} -lt 4 ]; do
  port="$(free_port)"
  [[ " ${ports[*]} " == *" $port "* ]] || ports+=("$port")
done
backend_url="http://127.0.0.1:${ports[0]}"
frontend_url="http://127.0.0.1:${ports[1]}"
calibration_backend_url="http://127.0.0.1:${ports[2]}"
calibration_frontend_url="http://127.0.0.1:${ports[3]}"
metrics_token="$("$py" -c 'import secrets; print(secrets.token_urlsafe(32))')"
secret_key="$("$py" -c 'import secrets; print(secrets.token_urlsafe(48))')"
# The key both services share; Locust's ApiUser sends it too (loadtests/locustfile.py).
api_key="$("$py" -c 'import secrets; print(secrets.token_urlsafe(32))')"
unset PROMETHEUS_MULTIPROC_DIR
export APP_ENV=production LOG_LEVEL=WARNING LOG_FORMAT=json METRICS_TOKEN="$metrics_token"
export BACKEND_API_KEY="$api_key"
# No new backend takes over when this one stops: no rolling-deploy drain (api/settings.py).
export SHUTDOWN_DRAIN_SECONDS=0
workers=2 # WEB_CONCURRENCY of the frontend, and of the calibration frontend
threads=4 # the frontend's gunicorn threads (frontend/gunicorn.conf.py), idem

backend_env=(DATABASE_PATH="$work/app.db" HOST=127.0.0.1 PORT="${ports[0]}")
if [ -n "${LOADTEST_FAULTS:-}" ]; then
  # Faults are refused in production (backend/api/faults.py); the frontend stays production.
  backend_env+=(APP_ENV=development FAULT_INJECTION="$LOADTEST_FAULTS")
  echo "loadtest: backend with FAULT_INJECTION=$LOADTEST_FAULTS"
fi
read -r -a backend_prefix <<<"${LOADTEST_BACKEND_PREFIX:-}"
(cd backend && exec env "${backend_env[@]}" ${backend_prefix[@]+"${backend_prefix[@]}"} \
  .venv/bin/python -m api serve) >"$reports/loadtest-backend.log" 2>&1 &
pids+=($!)
echo "${pids[-1]}" >"$reports/loadtest-backend.pid"

# The calibration stack: the same servers and settings, the fixed work of calibration.py.
(cd loadtests && exec "$root/backend/.venv/bin/uvicorn" calibration:backend_app \
  --host 127.0.0.1 --port "${ports[2]}" --workers 1 --log-level warning --no-access-log \
  --no-server-header --timeout-keep-alive 15) >"$reports/loadtest-calibration-backend.log" 2>&1 &
pids+=($!)
echo "${pids[-1]}" >"$reports/loadtest-calibration-backend.pid"
wait_ready backend "${pids[0]}" "$backend_url"
wait_ready calibration-backend "${pids[1]}" "$calibration_backend_url" /livez

(cd frontend && BACKEND_URL="$backend_url" HOST=127.0.0.1 PORT="${ports[1]}" \
  SECRET_KEY="$secret_key" WEB_CONCURRENCY="$workers" \
  exec .venv/bin/gunicorn -c gunicorn.conf.py "web:create_app()") \
  >"$reports/loadtest-frontend.log" 2>&1 &
pids+=($!)
echo "${pids[-1]}" >"$reports/loadtest-frontend.pid"
# From loadtests/: gunicorn would read a gunicorn.conf.py in its working directory.
(cd loadtests && CALIBRATION_BACKEND_URL="$calibration_backend_url" \
  exec "$root/frontend/.venv/bin/gunicorn" --worker-class gthread \
  --workers "$workers" --threads "$threads" --keep-alive 5 --no-control-socket \
  --bind "127.0.0.1:${ports[3]}" --log-level warning calibration:frontend_app) \
  >"$reports/loadtest-calibration-frontend.log" 2>&1 &
pids+=($!)
echo "${pids[-1]}" >"$reports/loadtest-calibration-frontend.pid"
wait_ready frontend "${pids[2]}" "$frontend_url"
wait_ready calibration-frontend "${pids[3]}" "$calibration_frontend_url" /livez

# Warm-up, outside the statistics: a freshly started stack reads the DuckDB file cold and fills
# the frontend's reference-data cache on first use. The gate measures the steady state.
for path in / "/?origin=JFK&month=7" /flights "/flights?origin=EWR&carrier=UA" /flights/1 \
  /flights/new /flights/1/edit; do
  curl -fsS -o /dev/null --max-time 10 -H "User-Agent: flights-loadtest/1.0 (+warm-up)" \
    -H "baggage: synthetic_request=true" "$frontend_url$path" || true
done
for _ in 1 2 3; do
  curl -fsS -o /dev/null --max-time 10 "$calibration_frontend_url/page" || true
done

scrape() { # $1 = output file; a failed scrape is reported, not fatal (the gate is Locust's)
  curl -fsS --max-time 10 -H "Authorization: Bearer $metrics_token" "$backend_url/metrics" \
    -o "$1" || echo "loadtest: could not read $backend_url/metrics" >&2
}
scrape "$reports/loadtest-metrics-before.txt"

echo "loadtest: $users users + $calibration_users calibration users (spawn rate" \
  "$spawn_rate/s) for $duration in $processes Locust process(es) against frontend" \
  "$frontend_url and backend $backend_url (hard timeout ${hard_timeout}s)"
locust_args=()
if [ "$processes" -gt 1 ]; then locust_args+=(--processes "$processes"); fi
set +e
FRONTEND_URL="$frontend_url" BACKEND_URL="$backend_url" \
  CALIBRATION_FRONTEND_URL="$calibration_frontend_url" \
  CALIBRATION_BACKEND_URL="$calibration_backend_url" \
  LOADTEST_CALIBRATION_USERS="$calibration_users" \
  timeout --kill-after=15 "$hard_timeout" "$locust" \
  -f loadtests/locustfile.py --headless ${locust_args[@]+"${locust_args[@]}"} \
  -u "$((users + calibration_users))" -r "$spawn_rate" -t "$duration" \
  --host "$frontend_url" \
  --csv "$reports/loadtest" --html "$reports/loadtest.html" --only-summary
locust_code=$?
set -e
if [ "$locust_code" -eq 124 ] || [ "$locust_code" -eq 137 ]; then
  echo "loadtest: Locust did not finish within ${hard_timeout}s and was stopped" >&2
fi

scrape "$reports/loadtest-metrics-after.txt"
if [ -s "$reports/loadtest-metrics-before.txt" ] && [ -s "$reports/loadtest-metrics-after.txt" ]; then
  "$py" loadtests/duckdb_report.py "$reports/loadtest-metrics-before.txt" \
    "$reports/loadtest-metrics-after.txt" | tee "$reports/loadtest-duckdb.txt" || true
fi

echo "loadtest: reports in $reports (loadtest.html, loadtest_stats.csv, loadtest-duckdb.txt)"
echo "loadtest: exit code $locust_code ($([ "$locust_code" -eq 0 ] && echo gate passed || echo gate FAILED))"
exit "$locust_code"
