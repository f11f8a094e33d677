#!/usr/bin/env bash
# Creates the virtual environments of both services and of the repository-level tests, and
# installs their pinned dependencies with uv. Safe to run again: a venv is only re-synced
# when its requirements file is newer than its stamp, so a second `make run` starts in seconds.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

UV_VERSION="0.13.9"
uv="$root/.tools/bin/uv"
# uv itself comes from PyPI into a private venv: no global install, same version everywhere.
if [ ! -x "$uv" ] || ! "$uv" --version 2>/dev/null | grep -q "$UV_VERSION"; then
  echo "bootstrap: installing uv $UV_VERSION into .tools/"
  python3 -m venv .tools
  .tools/bin/python -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
fi

sync_venv() { # $1 = folder holding the venv, $2 = requirements file inside it
  local dir="$1" req="$2" stamp="$1/.venv/.synced"
  if [ ! -x "$dir/.venv/bin/python" ]; then
    "$uv" venv --quiet --python 3.11 "$dir/.venv"
  fi
  if [ ! -f "$stamp" ] || [ "$dir/$req" -nt "$stamp" ]; then
    echo "bootstrap: installing $dir/$req"
    "$uv" pip sync --quiet --python "$dir/.venv/bin/python" "$dir/$req"
    touch "$stamp"
  fi
}

mode="${1:-dev}"
sync_venv backend requirements-dev.txt
sync_venv frontend requirements-dev.txt
if [ "$mode" = "test" ] || [ "$mode" = "bench" ]; then
  sync_venv . tests/requirements.txt
fi
if [ "$mode" = "bench" ]; then
  sync_venv bench requirements.txt  # the peer stack of `make bench` (bench/peer_app.py)
fi
