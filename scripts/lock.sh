#!/usr/bin/env bash
# Locks each service's dependencies with uv and exports the lock to the files that install it.
#
#   scripts/lock.sh          re-lock (backend, frontend: uv.lock) and re-export
#   scripts/lock.sh --check  fail when a uv.lock is out of step with its pyproject.toml, or an
#                            exported file with its uv.lock (`make lint` runs this)
#
# Per service, `uv.lock` is the source of truth (every version and its hashes, for Python
# >= 3.11 on every platform). Two files are exported from it, with hashes, because they are
# what gets installed: `requirements.txt` (runtime only: Nixpacks runs
# `pip install --no-deps -r requirements.txt`, and pip checks every hash) and
# `requirements-dev.txt` (runtime + the `dev` group: `scripts/bootstrap.sh` syncs the venvs
# with it). The repository-level tooling (tests/requirements.in) is not a service and stays a
# `uv pip compile` of its own.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
uv="$root/.tools/bin/uv"
check=false
[ "${1:-}" = "--check" ] && check=true

# Written to stdout (no -o), so the header uv writes names the same command in both modes.
export_runtime() { "$uv" export --quiet --frozen --no-emit-project --no-dev; }
export_dev() { "$uv" export --quiet --frozen --no-emit-project --group dev; }

status=0
for service in backend frontend; do
  cd "$root/$service"
  if $check; then
    if ! "$uv" lock --quiet --check; then
      echo "lock: $service/uv.lock is out of step with $service/pyproject.toml: run make lock" >&2
      status=1
      continue
    fi
    for pair in "requirements.txt:export_runtime" "requirements-dev.txt:export_dev"; do
      file="${pair%%:*}"
      if ! diff -u "$file" <("${pair##*:}") >/dev/null; then
        echo "lock: $service/$file differs from what $service/uv.lock exports: run make lock" >&2
        status=1
      fi
    done
  else
    "$uv" lock --quiet
    export_runtime >requirements.txt
    export_dev >requirements-dev.txt
  fi
done
if ! $check; then
  cd "$root"
  "$uv" pip compile -q tests/requirements.in --python-version 3.11 -o tests/requirements.txt
fi
exit $status
