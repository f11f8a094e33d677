#!/usr/bin/env bash
# Locks each service's dependencies with uv and exports the lock to the files that install it.
#
#   scripts/lock.sh          re-lock (backend, frontend: uv.lock) and re-export; re-compile the
#                            repository-level tooling (tests/requirements.txt) and the bench's
#                            peer stack (bench/requirements.txt: the backend's runtime pins +
#                            the peer's packages, bench/requirements.in)
#   scripts/lock.sh --check  fail when a uv.lock is out of step with its pyproject.toml, an
#                            exported file with its uv.lock, or tests/requirements.txt with
#                            tests/requirements.in, or bench/requirements.txt with its .in file
#                            and backend/requirements.txt (`make lint` runs this; no network)
#
# Per service, `uv.lock` is the source of truth (every version and its hashes, for Python
# >= 3.11 on every platform). Two files are exported from it, with hashes, because they are
# what gets installed: `requirements.txt` (runtime only: Nixpacks runs
# `pip install --no-deps -r requirements.txt`; hashes in the file switch pip to
# --require-hashes mode, so pip checks every download) and `requirements-dev.txt` (runtime +
# the `dev` group: `scripts/bootstrap.sh` syncs the venvs with it, `uv pip sync` checks the
# hashes too). The repository-level tooling (tests/requirements.in) is not a service and stays
# a `uv pip compile` of its own, with hashes as well.
#
# uv is the one bootstrap.sh installs from PyPI into .tools/ (pinned there); `make lock` and
# `make lint` run bootstrap.sh first.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
uv="$root/.tools/bin/uv"
check=false
[ "${1:-}" = "--check" ] && check=true
if [ ! -x "$uv" ]; then
  echo "lock: $uv is missing: run scripts/bootstrap.sh (make install) first" >&2
  exit 1
fi

# Written to stdout (no -o), so the header uv writes names the same command in both modes.
export_runtime() { "$uv" export --quiet --frozen --no-emit-project --no-dev; }
export_dev() { "$uv" export --quiet --frozen --no-emit-project --group dev; }

status=0
for service in backend frontend; do
  cd "$root/$service"
  if $check; then
    # --offline: an unchanged pyproject.toml is checked against the lock without the index;
    # a changed one cannot be resolved offline and fails here, as it should.
    if ! "$uv" lock --quiet --check --offline; then
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

cd "$root"
if ! $check; then
  "$uv" pip compile -q tests/requirements.in --python-version 3.11 --generate-hashes \
    -o tests/requirements.txt
  # After the backend's export: the bench venv pins the backend's runtime exactly.
  (cd bench && "$uv" pip compile -q requirements.in --python-version 3.11 --generate-hashes \
    -o requirements.txt)
  exit $status
fi
# tests/requirements.txt and bench/requirements.txt: re-compiling needs the index (and would
# pick newer releases), so the check is offline: every requirement of the .in file is pinned,
# by a version it allows, and every pin carries hashes; the bench's file also keeps every pin
# of backend/requirements.txt (the peer serves the same app with the same versions). The test
# venv's python has `packaging` (pytest needs it).
python="$root/.venv/bin/python"
[ -x "$python" ] || python=python3
check_compiled() { # $1 = .in file, $2 = its compiled file, [$3 = a file whose pins it keeps]
  "$python" - "$@" <<'EOF'
import re
import sys

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name


def pins_of(path):
    text = open(path).read().replace("\\\n", " ")
    pins, unhashed = {}, []
    for line in text.splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==(\S+)(.*)$", line)
        if match:
            pins[canonicalize_name(match.group(1))] = match.group(2)
            if "--hash=" not in match.group(3):
                unhashed.append(match.group(1))
    return pins, unhashed


source, compiled = sys.argv[1], sys.argv[2]
pins, unhashed = pins_of(compiled)
problems = [f"{name} has no hash" for name in unhashed]
for line in open(source).read().splitlines():
    line = line.split("#", 1)[0].strip()
    if not line or line.startswith("-"):  # -r <file>: checked below against that file's pins
        continue
    requirement = Requirement(line)
    if requirement.marker and not requirement.marker.evaluate():
        continue
    version = pins.get(canonicalize_name(requirement.name))
    if version is None:
        problems.append(f"{requirement.name} is not pinned")
    elif not requirement.specifier.contains(version, prereleases=True):
        problems.append(f"{requirement.name}=={version} is outside {requirement.specifier}")
if len(sys.argv) > 3:
    for name, version in pins_of(sys.argv[3])[0].items():
        if pins.get(name) != version:
            problems.append(f"{name}=={version} of {sys.argv[3]} is pinned as {pins.get(name)}")
for problem in problems:
    print(f"lock: {compiled}: {problem}", file=sys.stderr)
sys.exit(1 if problems else 0)
EOF
}
if ! check_compiled tests/requirements.in tests/requirements.txt; then
  echo "lock: tests/requirements.txt is out of step with tests/requirements.in: run make lock" >&2
  status=1
fi
if ! check_compiled bench/requirements.in bench/requirements.txt backend/requirements.txt; then
  echo "lock: bench/requirements.txt is out of step with bench/requirements.in or" \
    "backend/requirements.txt: run make lock" >&2
  status=1
fi
exit $status
