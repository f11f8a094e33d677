#!/usr/bin/env bash
# Starts the whole stack for local use: the backend (one uvicorn process, it owns the DuckDB
# file and loads the demo data on its first start) and then the frontend (gunicorn).
# Ctrl-C (or SIGTERM) stops both and waits for them, so the backend can CHECKPOINT.
# The all-in-one Nixpacks deployment (../nixpacks.toml) runs this script as PID 1 with the
# image's virtual environments in BACKEND_VENV and FRONTEND_VENV; ports: BACKEND_PORT (12015,
# loopback only) and FRONTEND_PORT, else PORT, else 12016.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
backend_venv="${BACKEND_VENV:-$root/backend/.venv}"
frontend_venv="${FRONTEND_VENV:-$root/frontend/.venv}"

backend_port="${BACKEND_PORT:-12015}"
# The frontend is what the outside reaches: in a container it listens on PORT, which Coolify
# sets to the first "Ports exposes" entry (so the proxy and the health check find it).
frontend_port="${FRONTEND_PORT:-${PORT:-12016}}"
if [ "$frontend_port" = "$backend_port" ]; then
  echo "run: the frontend's port $frontend_port (PORT, in Coolify the first \"Ports exposes\"" \
    "entry) is also the backend's internal port (BACKEND_PORT): set Ports exposes to 12016" \
    "(or BACKEND_PORT to another port)" >&2
  exit 2
fi
export DATABASE_PATH="${DATABASE_PATH:-$root/data/app.db}"
mkdir -p "$(dirname "$DATABASE_PATH")"
# The key both services share (the backend refuses /api/v1 without it, the frontend sends
# it). Set BACKEND_API_KEY to keep one; otherwise each start makes a fresh one, printed
# below for the API docs' "Authorize" button (never in production: it is a secret there).
if [ -z "${BACKEND_API_KEY:-}" ]; then
  BACKEND_API_KEY="$("$backend_venv/bin/python" -c 'import secrets; print(secrets.token_urlsafe(32))')"
  generated_key=1
fi
export BACKEND_API_KEY

pids=()
stop() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait || true
}
# Ctrl-C or SIGTERM is a normal stop (exit 0); anything else that ends the script stops both.
trap 'stop; exit 0' INT TERM
trap stop EXIT

# The backend is internal: loopback only, whatever HOST says (HOST is for the frontend).
(cd "$root/backend" && HOST=127.0.0.1 PORT="$backend_port" \
  exec "$backend_venv/bin/python" -m api serve) &
pids+=($!)

wait_for() { # $1 = URL answering 200 when ready, $2 = pid of the service, $3 = its name
  local deadline=$((SECONDS + 300))
  while [ "$SECONDS" -lt "$deadline" ]; do
    # Python rather than curl: the deployment image is only guaranteed to have Python.
    if "$backend_venv/bin/python" -c "import urllib.request as u; u.urlopen('$1', timeout=1)" 2>/dev/null; then
      return 0
    fi
    if ! kill -0 "$2" 2>/dev/null; then echo "run: the $3 exited" >&2; exit 1; fi
    sleep 0.2
  done
  echo "run: the $3 did not answer within 300 s" >&2
  exit 1
}
# The first start loads 336,776 flights; later starts are ready in about a second. /health,
# not /readyz: in an all-in-one rolling deploy the old container holds the DuckDB lock until
# this one is healthy, so the frontend must start while the backend still waits for it.
echo "run: waiting for the backend on :$backend_port (first start loads the demo data)"
wait_for "http://127.0.0.1:$backend_port/health" "${pids[0]}" backend

(cd "$root/frontend" && PORT="$frontend_port" BACKEND_URL="http://127.0.0.1:$backend_port" \
  exec "$frontend_venv/bin/gunicorn" -c gunicorn.conf.py "web:create_app()") &
pids+=($!)
wait_for "http://127.0.0.1:$frontend_port/livez" "${pids[1]}" frontend

cat <<MSG

  frontend  http://localhost:$frontend_port
  backend   http://localhost:$backend_port/docs   (API under /api/v1)
  database  $DATABASE_PATH
MSG
if [ -n "${generated_key:-}" ] && [ "${APP_ENV:-development}" != "production" ]; then
  echo "  API key   $BACKEND_API_KEY   (generated for this run: Authorization: Bearer <key>)"
fi
cat <<MSG

  Ctrl-C stops both.
MSG
# Whichever service dies first takes the other down with it.
status=0
wait -n || status=$?
echo "run: a service exited with status $status; stopping the other" >&2
exit 1
