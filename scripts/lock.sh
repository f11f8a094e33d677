#!/usr/bin/env bash
# Locks each service's dependencies with uv and exports the lock to the files that install it.
#
#   scripts/lock.sh          re-lock (backend, frontend: uv.lock) and re-export; re-compile the
#                            repository-level tooling (tests/requirements.txt)
#   scripts/lock.sh --check  fail when a uv.lock is out of step with its pyproject.toml, an
#                            exported file with its uv.lock, or tests/requirements.txt with
#                            tests/requirements.in (`make lint` runs this; no network needed)
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
  exit $status
fi
# tests/requirements.txt: re-compiling needs the index (and would pick newer releases), so
# the check is offline: every requirement of the .in file is pinned, by a version it allows,
# and every pin carries hashes. The test venv's python has `packaging` (pytest needs it).
python="$root/.venv/bin/python"
[ -x "$python" ] || python=python3
if ! "$python" - tests/requirements.in tests/requirements.txt <<'EOF'; then
import re
import sys

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

source, compiled = sys.argv[1], sys.argv[2]
text = open(compiled).read().replace("\\\n", " ")
pins, unhashed = {}, []
for line in text.splitlines():
    match = re.match(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==(\S+)(.*)$", line)
    if match:
        pins[canonicalize_name(match.group(1))] = match.group(2)
        if "--hash=" not in match.group(3):
            unhashed.append(match.group(1))
problems = [f"{name} has no hash" for name in unhashed]
for line in open(source).read().splitlines():
    line = line.split("#", 1)[0].strip()
    if not line:
        continue
    requirement = Requirement(line)
    if requirement.marker and not requirement.marker.evaluate():
        continue
    version = pins.get(canonicalize_name(requirement.name))
    if version is None:
        problems.append(f"{requirement.name} is not pinned")
    elif not requirement.specifier.contains(version, prereleases=True):
        problems.append(f"{requirement.name}=={version} is outside {requirement.specifier}")
for problem in problems:
    print(f"lock: {compiled}: {problem}", file=sys.stderr)
sys.exit(1 if problems else 0)
EOF
  echo "lock: tests/requirements.txt is out of step with tests/requirements.in: run make lock" >&2
  status=1
fi
exit $status
