"""The build plan Nixpacks derives for a Base Directory, by its Python provider's rules.

Read from railwayapp/nixpacks at commit f51d7fd5872e6937a98870b5339ff3ce641499e3 (v1.39.0+4;
Coolify's helper image pins Nixpacks 1.41.0, coollabsio/coolify
docker/coolify-helper/Dockerfile:13 at 379abb2, a release that mirror does not hold yet).
File references below are to that commit. Only what our three plans can meet is mirrored; a
plan that would need more (another provider, Django, a Pipfile ...) raises `Unsupported`, so a
change that leaves the rehearsed ground fails loudly instead of being rehearsed wrongly.

Coolify calls `nixpacks plan -f json --env K=V ... [--start-cmd ...] <workdir>` with the
application's `NIXPACKS_*` variables and its `COOLIFY_*` build variables as `--env`
(app/Jobs/ApplicationDeploymentJob.php:2574-2625 at coolify 379abb2), then merges every
"Available during build" variable into the plan's `variables` (ApplicationDeploymentJob.php:
2520-2521): `derive_plan(..., build_env=...)` takes those, `cli=` the UI's command fields.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from container import Image

VENV = "/opt/venv"  # src/providers/python.rs:27
# The `python3` package of the provider's nixpkgs archive (python.rs:22,33,551-554): 3.12 in
# archive bc8f8d1 (the docs page still says 3.11; nixpkgs' python3 is 3.12 since 24.05).
DEFAULT_PYTHON = "3.12"
_PYTHON_PACKAGES = {  # python.rs:583-591: major.minor -> nix package
    ("3", "13"): "python313",
    ("3", "12"): "python312",
    ("3", "11"): "python311",
    ("3", "10"): "python310",
    ("3", "9"): "python39",
    ("3", "8"): "python38",
}
# python.rs:559-560, the version pattern (3.8.0, 3.8, 3, "3.11", python-3.11 ...)
_VERSION = re.compile(r"""^(?:[\sa-zA-Z-"']*)(\d*)(?:\.*)(\d*)(?:\.*\d*)(?:["']?)$""")
# python.rs:497-507, set by the provider; a nixpacks.toml or build variable may override.
PROVIDER_VARIABLES = {
    "PYTHONFAULTHANDLER": "1",
    "PYTHONUNBUFFERED": "1",
    "PYTHONHASHSEED": "random",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PIP_NO_CACHE_DIR": "1",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "PIP_DEFAULT_TIMEOUT": "100",
}


class Unsupported(RuntimeError):
    """The Base Directory needs a Nixpacks rule this rehearsal does not mirror."""


@dataclass
class Phase:
    """One plan phase: shell commands run as Dockerfile `RUN`s and `PATH` additions."""

    name: str
    cmds: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)


@dataclass
class Plan:
    """What `nixpacks plan` returns, reduced to what builds and starts a Python image.

    `python` is "major.minor" and `python_source` says which rule chose it; `phases` are in
    build order (setup has no commands here: it installs Nix packages); `variables` become
    the image's `ENV` (dockerfile_generation.rs:142-161).
    """

    base_directory: Path
    python: str
    python_source: str
    phases: list[Phase]
    start_cmd: str | None
    variables: dict[str, str]
    apt_pkgs: list[str] = field(default_factory=list)

    @property
    def paths(self) -> list[str]:
        """Every phase's `paths`, in phase order (what ends up on the login shell's PATH)."""
        return [path for phase in self.phases for path in phase.paths]


def fill_auto(original: list[str] | None, replacer: list[str] | None) -> list[str] | None:
    """`fill_auto_in_vec` (src/nixpacks/plan/utils.rs:20-45): an array of higher priority
    replaces the lower one unless it holds "..." (or "@auto"), where the lower one is spliced
    in; the marker itself is dropped when the plan is pinned (utils.rs:2-7)."""
    if replacer is None:
        return original
    merged: list[str] = []
    for item in replacer:
        if item in ("...", "@auto"):
            merged.extend(original or [])
        else:
            merged.append(item)
    return merged


def python_version(app: Path, env: dict[str, str]) -> tuple[str, str]:
    """(major.minor, the rule that chose it), exactly as python.rs:518-605 reads it.

    Note the provider's precedence quirk (python.rs:528-541): `NIXPACKS_PYTHON_VERSION` wins
    over `.python-version` only; a `runtime.txt` still replaces it.
    """
    version: str | None = env.get("NIXPACKS_PYTHON_VERSION", "").replace("\n", "") or None
    source = "NIXPACKS_PYTHON_VERSION"
    if version is None and (app / ".python-version").is_file():
        version, source = (app / ".python-version").read_text(), ".python-version"
    elif (app / "runtime.txt").is_file():
        version, source = (app / "runtime.txt").read_text(), "runtime.txt"
    elif (app / "Pipfile").is_file() or (app / ".tool-versions").is_file():
        raise Unsupported("Python version from a Pipfile or .tool-versions is not rehearsed")
    if version is None:
        return DEFAULT_PYTHON, "the provider's default python3 (no version file)"
    match = _VERSION.match(version.strip())
    if not match:
        return DEFAULT_PYTHON, f"the default python3 ({source} does not parse)"
    key = (match.group(1) or "_", match.group(2) or "_")
    if key not in _PYTHON_PACKAGES:
        return DEFAULT_PYTHON, f"the default python3 ({source} names no known version)"
    return f"{key[0]}.{key[1]}", source


def _provider_install(app: Path, env: dict[str, str]) -> Phase:
    """The python provider's install phase (python.rs:278-383, manager from python.rs:59-103)."""
    create = f"python -m venv --copies {VENV}"  # python.rs:279-280
    activate = f". {VENV}/bin/activate"
    manager = env.get("NIXPACKS_PYTHON_PACKAGE_MANAGER", "auto").lower()
    if manager == "skip":
        return Phase("install")
    if manager == "auto":
        if (app / "requirements.txt").is_file():
            manager = "requirements"
        elif (app / "pyproject.toml").is_file():
            lock = next(
                (
                    m
                    for m, f in (("poetry", "poetry.lock"), ("pdm", "pdm.lock"), ("uv", "uv.lock"))
                    if (app / f).is_file()
                ),
                "setuptools",
            )
            manager = lock
        elif (app / "Pipfile").is_file():
            manager = "pipenv"
        else:
            return Phase("install")  # NoInstallation (python.rs:97, 381)
    commands = {
        # python.rs:292-301: requirements.txt wins over pyproject.toml and every lock file
        "requirements": "pip install -r requirements.txt",
        # python.rs:350-358
        "setuptools": "pip install --upgrade build setuptools && pip install .",
        # python.rs:338-341 (uv's own resolver, not pip)
        "uv": "pip install uv==$NIXPACKS_UV_VERSION && uv sync --no-dev --frozen",
    }
    if manager not in commands:
        raise Unsupported(f"install with {manager} is not rehearsed")
    return Phase("install", [f"{create} && {activate} && {commands[manager]}"], [f"{VENV}/bin"])


def _provider_start(app: Path) -> str | None:
    """python.rs:385-412: manage.py (Django) > main.py > `python -m <pyproject name>`."""
    if (app / "manage.py").is_file():
        raise Unsupported("Django start commands are not rehearsed")
    if (app / "main.py").is_file():
        return "python main.py"
    if (app / "pyproject.toml").is_file():
        project = tomllib.loads((app / "pyproject.toml").read_text()).get("project", {})
        module = (project.get("packages") or project.get("py-modules") or [None])[0]
        module = module or project.get("name")
        if module:
            return f"python -m {module}"
    return None


def derive_plan(
    app: Path, build_env: dict[str, str] | None = None, cli: dict[str, str] | None = None
) -> Plan:
    """The plan of Base Directory `app` (a checkout of it, before `.dockerignore`).

    `build_env`: the `--env` values (build variables and Coolify's `COOLIFY_*`); `cli`: the
    UI's "Install command" / "Build command" / "Start command" (`install`, `build`, `start`,
    passed as --install-cmd ... by ApplicationDeploymentJob.php:2578-2586). Priority, lowest
    first: provider, nixpacks.toml, environment, CLI (plan/generator.rs:60-106) for phases and
    the start command; the file's `[variables]` are visible to the provider (generator.rs:
    63-67) and every `--env` variable ends up in the plan's variables (generator.rs:79-81).
    """
    build_env = dict(build_env or {})
    cli = cli or {}
    config_path = app / build_env.get("NIXPACKS_CONFIG_FILE", "nixpacks.toml")
    config = tomllib.loads(config_path.read_text()) if config_path.is_file() else {}
    providers = fill_auto(["python"] if _detects_python(app) else [], config.get("providers"))
    if providers != ["python"]:
        raise Unsupported(f"providers {providers}: only the python provider is rehearsed")
    provider_env = {**build_env, **config.get("variables", {})}

    python, python_source = python_version(app, provider_env)
    phases = {"setup": Phase("setup"), "install": _provider_install(app, provider_env)}
    start = _provider_start(app)

    def overlay(name: str, cmds: list[str] | None, paths: list[str] | None = None) -> None:
        phase = phases.setdefault(name, Phase(name))
        phase.cmds = fill_auto(phase.cmds, cmds) or []
        phase.paths = fill_auto(phase.paths, paths) or []

    for name, section in config.get("phases", {}).items():  # the file plan (merge.rs:39-58)
        if set(section) - {"cmds", "paths", "dependsOn", "aptPkgs"}:
            raise Unsupported(f"phases.{name} keys {sorted(section)} are not rehearsed")
        overlay(name, section.get("cmds"), section.get("paths"))
    start = config.get("start", {}).get("cmd", start)  # merge.rs:93-98
    for name, variable in (("install", "INSTALL_CMD"), ("build", "BUILD_CMD")):  # mod.rs:263-286
        if f"NIXPACKS_{variable}" in build_env:
            overlay(name, [build_env[f"NIXPACKS_{variable}"]])
        if name in cli:
            overlay(name, [cli[name]])
    start = cli.get("start") or build_env.get("NIXPACKS_START_CMD") or start

    # generator.rs:63-81: the --env values with the file's [variables] laid over them (the
    # file wins a tie), over the provider's; python.rs:148, generator.rs:180-185.
    variables = {
        **PROVIDER_VARIABLES,
        "NIXPACKS_METADATA": "python",
        **build_env,
        **config.get("variables", {}),
    }
    ordered = [phases.pop(n) for n in ("setup", "install", "build") if n in phases]
    return Plan(
        base_directory=app,
        python=python,
        python_source=python_source,
        phases=ordered + list(phases.values()),
        start_cmd=start,
        variables={k: str(v) for k, v in variables.items()},
        apt_pkgs=list(config.get("phases", {}).get("setup", {}).get("aptPkgs", [])),
    )


def _detects_python(app: Path) -> bool:
    """python.rs:113-119."""
    return any((app / f).is_file() for f in ("main.py", "requirements.txt", "pyproject.toml"))


class WrongPython(RuntimeError):
    """The plan picks a Python this machine does not have (so it is not what the pins and the
    tests were made for)."""


def build_context(repo: Path, base_directory: str, target: Path) -> Path:
    """The Docker build context Coolify hands Nixpacks: the Base Directory of a fresh clone
    (git-tracked files only; the job removes .git, ApplicationDeploymentJob.php:2490-2494)
    with that directory's `.dockerignore` applied by Docker's rules (docker-py's port of
    them, docker.utils.build.exclude_paths; the file read as docker.api.build does)."""
    from docker.utils.build import exclude_paths

    source = repo / base_directory.strip("/")
    tracked = subprocess.run(
        ["git", "ls-files", "-z", "--", "."],
        cwd=source,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split("\0")
    staging = target.with_name(target.name + "-clone")
    for name in filter(None, tracked):
        if (source / name).is_file():  # a tracked file deleted in the worktree is not there
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / name, staging / name)
    ignore = staging / ".dockerignore"
    patterns = (
        [
            line.strip()
            for line in ignore.read_text().splitlines()
            if line.strip() and not line.strip().startswith("#")
        ]
        if ignore.is_file()
        else []
    )
    kept = exclude_paths(str(staging), patterns, dockerfile=".nixpacks/Dockerfile")
    for name in sorted(kept):
        path = staging / name
        if path.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target / name)
    target.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(staging)
    return target


def host_python(version: str, source: str) -> Path:
    """This machine's interpreter standing in for Nix's `python3xx` of `version`."""
    found = shutil.which(f"python{version}", path="/usr/bin:/bin")
    if found is None:
        raise WrongPython(
            f"the plan picks Python {version} (from {source}); the pins are compiled for 3.11 "
            "and this rehearsal has no such interpreter to build with"
        )
    return Path(found)


def build_image(plan: Plan, context: Path, root: Path, log: Path) -> Image:
    """`nixpacks build` of `plan` (its variables already merged with Coolify's build args):
    the Dockerfile's ENV, then each phase's commands as RUN steps, then the profile PATH lines
    (dockerfile_generation.rs:221-245). Raises ContainerError when a step fails."""
    image = Image.create(root, context, host_python(plan.python, plan.python_source))
    image.env.update(plan.variables)
    for phase in plan.phases:
        image.set_phase_paths(phase.paths)
        for command in phase.cmds:
            image.run(command, log)
    image.write_profile_paths(plan.paths)
    image.cmd = plan.start_cmd
    return image
