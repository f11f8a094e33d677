"""What Coolify does with an application's settings, read from coollabsio/coolify at commit
379abb252621f34b318190bd49b614aed9818716 (file:line below are of that commit; the job is
app/Jobs/ApplicationDeploymentJob.php, "the job").

- `Application`: the settings of one resource as the UI holds them, with Coolify's defaults.
- `nixpacks_env` / `build_args`: the variables a build sees (and Nixpacks bakes into the image).
- `runtime_env`: the container's `.env` file, which overrides the image's ENV.
- `healthcheck_command` and `wait_until_healthy`: Docker's health check as Coolify configures
  it and Coolify's rolling-update wait for it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from container import Container

DEFAULT_STOP_GRACE_PERIOD = 30  # bootstrap/helpers/constants.php:38


@dataclass
class Variable:
    """A row of "Environment Variables". New rows are "Available during build" and
    "Available in the container" (app/Livewire/Project/Shared/EnvironmentVariable/Add.php:
    35-37; the UI's "Build time" and "Runtime" choices,
    resources/views/livewire/project/shared/environment-variable/add.blade.php:43-51)."""

    key: str
    value: str
    buildtime: bool = True
    runtime: bool = True


@dataclass
class HealthCheck:
    """The "Healthcheck" page. Defaults: database/migrations/2023_03_27_081716_create_
    applications_table.php:45-55 (path /, host localhost, interval 5 s, timeout 5 s, retries
    10, start period 5 s) and 2024_07_19_132617_disable_healtcheck_by_default.php:15 (off)."""

    enabled: bool = False
    path: str = "/"
    port: int | None = None  # "Uses the first exposed port when empty"
    interval: int = 5
    timeout: int = 5
    retries: int = 10
    start_period: int = 5


@dataclass
class Application:
    """One Coolify application, as created by the new-resource form and then configured.

    `ports_exposes` is 3000 after choosing Nixpacks (app/Livewire/Project/New/
    PublicGitRepository.php:99-105); `fqdn` the generated `http://<uuid>.<ip>.sslip.io`
    (PublicGitRepository.php:343-345, bootstrap/helpers/shared.php:1262-1317), None once the
    operator deletes it; Nixpacks resources start with NIXPACKS_NODE_VERSION=22, build only
    (app/Models/Application.php:364-377).
    """

    name: str
    base_directory: str
    uuid: str = "x8k2c0w4o8s0g4k0"
    ports_exposes: str = "3000"
    network_aliases: list[str] = field(default_factory=list)
    fqdn: str | None = "generated"
    variables: list[Variable] = field(default_factory=list)
    health_check: HealthCheck = field(default_factory=HealthCheck)
    stop_grace_period: int | None = None  # "Stop grace period (seconds)", empty = 30
    branch: str = "main"
    commit: str = "0123456789abcdef0123456789abcdef01234567"
    server_ip: str = "203.0.113.7"

    def __post_init__(self) -> None:
        if self.fqdn == "generated":
            self.fqdn = f"http://{self.uuid}.{self.server_ip}.sslip.io"
        self.variables.insert(0, Variable("NIXPACKS_NODE_VERSION", "22", runtime=False))

    def set(self, key: str, value: str, *, buildtime: bool = True, runtime: bool = True) -> None:
        """Add or replace a variable (as the operator does in the UI)."""
        self.variables = [v for v in self.variables if v.key != key]
        self.variables.append(Variable(key, value, buildtime, runtime))

    @property
    def grace(self) -> int:
        """ApplicationSetting::stopGracePeriodSeconds (app/Models/ApplicationSetting.php:124)."""
        period = self.stop_grace_period
        return period if period is not None and 1 <= period <= 3600 else DEFAULT_STOP_GRACE_PERIOD

    def container_name(self) -> str:
        """`<uuid>-<Hisu>`, new for every deploy (bootstrap/helpers/docker.php:345-360)."""
        return f"{self.uuid}-{time.strftime('%H%M%S')}{time.time_ns() // 1000 % 1_000_000:06d}"

    def coolify_variables(self, *, container: str | None) -> dict[str, str]:
        """The job's generate_coolify_env_variables (job:3072-3167), parser version 5 (new
        applications, Application.php:131,361): COOLIFY_URL is the domain list with scheme,
        COOLIFY_FQDN without; SOURCE_COMMIT and COOLIFY_CONTAINER_NAME only at run time
        (`container` None means the build; "Source commit availability" defaults to
        "Runtime only")."""
        fqdn = self.fqdn or ""
        values = {
            "COOLIFY_URL": fqdn,
            "COOLIFY_FQDN": fqdn.replace("http://", "").replace("https://", ""),
            "COOLIFY_BRANCH": self.branch,
            "COOLIFY_RESOURCE_UUID": self.uuid,
        }
        if container is not None:
            values = {"SOURCE_COMMIT": self.commit, **values, "COOLIFY_CONTAINER_NAME": container}
        keys = {v.key for v in self.variables}
        return {k: v for k, v in values.items() if k not in keys}


def nixpacks_env(app: Application) -> dict[str, str]:
    """`nixpacks plan --env` (job:2592-2625): the NIXPACKS_* variables and the COOLIFY_*
    build variables (non-empty values only)."""
    env = {v.key: v.value for v in app.variables if v.key.startswith("NIXPACKS_") and v.value}
    env.update({k: v for k, v in app.coolify_variables(container=None).items() if v})
    return env


def build_args(app: Application) -> dict[str, str]:
    """The job's env_args (generate_env_variables, job:3169-3219): COOLIFY_* build variables
    and every variable "Available during build" except buildpack control ones (NIXPACKS_*,
    app/Models/EnvironmentVariable.php:136-143). Merged over the plan's variables
    (job:2520-2522), they become the image's ENV."""
    args = {k: v for k, v in app.coolify_variables(container=None).items() if v}
    args.update(
        {
            v.key: v.value
            for v in app.variables
            if v.buildtime and not v.key.startswith(("NIXPACKS_", "RAILPACK_"))
        }
    )
    return args


def runtime_env(app: Application, container: str) -> dict[str, str]:
    """The container's `.env` (generate_runtime_environment_variables, job:1326-1419; the
    compose file always loads it, job:3297): Coolify's variables, the variables "Available in
    the container", then PORT = the first "Ports exposes" entry unless a PORT variable exists
    (job:1408-1413) and HOST=0.0.0.0 unless a HOST variable exists (job:1414-1417)."""
    env = app.coolify_variables(container=container)
    env.update(
        {
            v.key: v.value
            for v in app.variables
            if v.runtime and not v.key.startswith(("NIXPACKS_", "RAILPACK_"))
        }
    )
    keys = {v.key for v in app.variables}
    ports = [p.strip() for p in app.ports_exposes.split(",") if p.strip()]
    if "PORT" not in keys and ports:
        env["PORT"] = ports[0]
    if "HOST" not in keys:
        env["HOST"] = "0.0.0.0"
    return env


def healthcheck_command(app: Application) -> str:
    """The CMD-SHELL test of the compose file (generate_healthcheck_commands, job:3508-3559):
    the port is the Healthcheck page's, else the first "Ports exposes" entry."""
    check = app.health_check
    port = check.port or int(app.ports_exposes.split(",")[0])
    url = f"'http://localhost:{port}{check.path or '/'}'"
    return f"curl -s -X 'GET' -f {url} > /dev/null || wget -q -O- {url} > /dev/null || exit 1"


@dataclass
class HealthReport:
    """What the deployment log says: healthy or not, after how many seconds, the statuses
    Coolify read ("Attempt n of retries | Healthcheck status: ...")."""

    healthy: bool
    seconds: float
    statuses: list[str]


class _DockerHealth(threading.Thread):
    """dockerd's health monitor: probes every `interval` s from the container's start, each
    bounded by `timeout`; failures inside `start_period` do not count until a first success;
    `retries` consecutive failures make the container "unhealthy"."""

    def __init__(self, container: Container, command: str, check: HealthCheck) -> None:
        super().__init__(daemon=True)
        self.container, self.command, self.check = container, command, check
        self.status = "starting"
        self.finished = threading.Event()

    def run(self) -> None:
        failures, probe = 0, 1
        while not self.finished.is_set() and self.container.running():
            wait = self.container.started + probe * self.check.interval - time.monotonic()
            if self.finished.wait(max(wait, 0)):
                return
            probe += 1
            if self.container.exec(self.command, self.check.timeout) == 0:
                self.status, failures = "healthy", 0
                continue
            in_start = time.monotonic() - self.container.started < self.check.start_period
            if self.status == "healthy" or not in_start:
                failures += 1
            if failures >= self.check.retries:
                self.status = "unhealthy"


def wait_until_healthy(container: Container, app: Application) -> HealthReport:
    """The job's health_check() (job:1985-2061): with the check off, healthy at once
    (job:1991-1994); else sleep the start period, then read Docker's status up to `retries`
    times, `interval` s apart, until "healthy" or "unhealthy"; still "starting" after the
    last read counts as not healthy (the deploy is rolled back, job:4021-4048)."""
    began = time.monotonic()
    check = app.health_check
    if not check.enabled:
        return HealthReport(True, 0.0, [])
    monitor = _DockerHealth(container, healthcheck_command(app), check)
    monitor.start()
    statuses: list[str] = []
    try:
        time.sleep(check.start_period)
        for _attempt in range(check.retries):
            statuses.append(monitor.status if container.running() else "exited")
            if statuses[-1] in ("healthy", "unhealthy", "exited"):
                break
            time.sleep(check.interval)
        return HealthReport(statuses[-1] == "healthy", time.monotonic() - began, statuses)
    finally:
        monitor.finished.set()
        monitor.join(timeout=check.timeout + 5)


def domain_host(app: Application) -> str | None:
    """The host name of the application's first domain (what Traefik routes), or None."""
    first = (app.fqdn or "").split(",")[0].strip()
    return urlsplit(first).hostname if first else None
