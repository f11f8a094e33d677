"""A small container runtime for the deployment rehearsal: Linux namespaces, no Docker.

What Docker gives a Nixpacks image and what the rehearsal reproduces:

- the image: its `/app` (the build context, then whatever the build wrote), `/opt` (the venvs)
  and `/root` (the login profile Nixpacks writes), here host directories; the operating system
  is this machine's `/usr` (read-only), which has bash, curl and wget like the Nixpacks base
  image plus Coolify's apt packages (nixpacks base/ubuntu/Dockerfile:6, coolify
  ApplicationDeploymentJob.php:2522-2534);
- `RUN` steps as `/bin/bash -ol pipefail -c` (the base image's SHELL, base/ubuntu/Dockerfile:11)
  in `/app` with the image's `ENV`, on the host network (Coolify builds with `--network host`,
  ApplicationDeploymentJob.php:3880-3884);
- a container: PID 1 of its own PID namespace, its own mount namespace (a writable overlay
  layer over the image, fresh `/tmp`, volumes bound at their paths), its own network namespace
  on a bridge shared with the other containers of the `Network`, names from a shared hosts
  file (Docker's DNS answers the container name and the network aliases);
- `docker exec` (the health check) via nsenter into all of the container's namespaces;
- `docker stop --time=N`: SIGTERM to PID 1, SIGKILL N seconds later.

Everything a container mounts lives in its own mount namespace and disappears with it; the
only host state is under the directories the caller passes (pytest's tmp_path).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

INIT = Path(__file__).with_name("container_init.sh")
IMAGE_DIRS = ("app", "opt", "root")
# The Nixpacks base image's ENV (nixpacks base/ubuntu/Dockerfile:23-36); Docker adds HOME.
BASE_ENV = {
    "ENV": "/etc/profile",
    "USER": "root",
    "HOME": "/root",
    "PATH": "/nix/var/nix/profiles/default/bin:/nix/var/nix/profiles/default/sbin:/bin:/sbin"
    ":/usr/bin:/usr/sbin",
    "GIT_SSL_CAINFO": "/etc/ssl/certs/ca-certificates.crt",
    "NIX_SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt",
    "NIX_PATH": "/nix/var/nix/profiles/per-user/root/channels",
    "NIXPKGS_ALLOW_BROKEN": "1",
    "NIXPKGS_ALLOW_UNFREE": "1",
    "NIXPKGS_ALLOW_INSECURE": "1",
    "LD_LIBRARY_PATH": "/usr/lib",
}
# /root/.profile of the image: Ubuntu's default, then what the base image appends (its
# Dockerfile:20-21, no newline after the PATH line) and each phase's `paths`, appended by
# dockerfile_generation.rs:195-198 as "\nPATH=<paths>:$PATH".
PROFILE = (
    '# ~/.profile: executed by Bourne-compatible login shells.\n\nif [ "$BASH" ]; then\n'
    "  if [ -f ~/.bashrc ]; then\n    . ~/.bashrc\n  fi\nfi\n\nmesg n 2> /dev/null || true\n"
    "if [ -d $HOME/.nix-profile/etc/profile.d ]; then\n for i in "
    "$HOME/.nix-profile/etc/profile.d/*.sh; do\n if [ -r $i ]; then\n . $i\n fi\n done\n fi\n"
    "PATH=$NIXPACKS_PATH:$PATH"
)


class ContainerError(RuntimeError):
    """A build step failed or a container could not be set up (message has the output)."""


def _child_pid(parent: int, timeout: float = 10.0) -> int:
    """The PID (host view) of the process `unshare --fork` started: the namespace's PID 1."""
    deadline = time.monotonic() + timeout
    children = Path(f"/proc/{parent}/task/{parent}/children")
    while time.monotonic() < deadline:
        try:
            text = children.read_text().split()
        except FileNotFoundError:
            raise ContainerError("unshare exited before starting its child") from None
        if text:
            return int(text[0])
        time.sleep(0.01)
    raise ContainerError("unshare did not start its child")


def _nsenter(pid: int, *command: str, namespaces: tuple[str, ...] = ("-n",)) -> None:
    subprocess.run(
        ["nsenter", "-t", str(pid), *namespaces, "--", *command],
        check=True,
        capture_output=True,
        timeout=30,
    )


@dataclass
class Image:
    """A built image: `root` holds its `app/`, `opt/` and `root/`; `env` is its ENV and
    `cmd` its start command (`CMD`, run by the `ENTRYPOINT ["/bin/bash", "-l", "-c"]` of
    dockerfile_generation.rs:224 and utils.rs:66-70)."""

    root: Path
    env: dict[str, str]
    cmd: str | None = None

    @classmethod
    def create(cls, root: Path, context: Path, python: Path) -> Image:
        """An image holding `context` at /app, an empty /opt, the Nixpacks /root profile and,
        standing for Nix's `python3xx` package in the profile, the interpreter `python`."""
        shutil.copytree(context, root / "app", symlinks=True)
        (root / "opt").mkdir()
        home = root / "root"
        (home / ".nix-profile/bin").mkdir(parents=True)
        (home / ".nix-profile/etc/profile.d").mkdir(parents=True)
        (home / ".nix-profile/etc/profile.d/nix.sh").write_text(
            'export PATH="$HOME/.nix-profile/bin:$PATH"\n'
        )
        for name in ("python", "python3", python.name):
            (home / ".nix-profile/bin" / name).symlink_to(python)
        (home / ".profile").write_text(PROFILE)
        (home / ".bashrc").write_text('[ -z "$PS1" ] && return\n')
        return cls(root=root, env=dict(BASE_ENV))

    def set_phase_paths(self, paths: list[str]) -> None:
        """`ENV NIXPACKS_PATH=<paths>:$NIXPACKS_PATH` before a phase's commands
        (dockerfile_generation.rs:401-404)."""
        if paths:
            self.env["NIXPACKS_PATH"] = f"{':'.join(paths)}:{self.env.get('NIXPACKS_PATH', '')}"

    def write_profile_paths(self, paths: list[str]) -> None:
        """After all phases, each phase's paths as a PATH line of /root/.profile
        (dockerfile_generation.rs:190-206): what a login shell puts first on PATH."""
        if paths:
            with (self.root / "root/.profile").open("a") as profile:
                profile.write(f"\nPATH={':'.join(paths)}:$PATH")

    def run(
        self, command: str, log: Path, env: dict[str, str] | None = None, check: bool = True
    ) -> int:
        """A `RUN` step; its output goes to `log`. Returns the exit code; with `check`,
        raises ContainerError with the end of the output when the step fails."""
        environment = {**self.env, **(env or {})}
        argv = ["/bin/bash", "-ol", "pipefail", "-c", command]
        scratch = log.parent / f".build-{time.monotonic_ns()}"
        scratch.mkdir()
        with log.open("ab") as out:
            out.write(f"\n$ {command}\n".encode())
            out.flush()
            result = subprocess.run(
                [
                    "unshare",
                    "--pid",
                    "--fork",
                    "--kill-child",
                    "--mount",
                    "--",
                    "bash",
                    str(INIT),
                    "build",
                    str(scratch),
                    str(self.root),
                    "-",
                    "-",
                    "-",
                    "--",
                    *argv,
                ],
                env=environment,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=900,
            )
        scratch.rmdir()
        if check and result.returncode != 0:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
            raise ContainerError(f"RUN {command!r} exited {result.returncode}:\n{tail}")
        return result.returncode


@dataclass
class Network:
    """A Docker network: a bridge in a namespace of its own (where Coolify's proxy sits, at
    10.89.0.1) and a hosts file with every container's name and aliases."""

    directory: Path
    holder: subprocess.Popen[bytes] | None = None
    pid: int = 0
    members: int = 0

    GATEWAY = "10.89.0.1"

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.hosts = self.directory / "hosts"
        self.hosts.write_text("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
        self.holder = subprocess.Popen(
            ["unshare", "--net", "--fork", "--kill-child", "--", "sleep", "infinity"]
        )
        self.pid = _child_pid(self.holder.pid)
        _nsenter(
            self.pid,
            "sh",
            "-ec",
            f"ip link set lo up; ip link add br0 type bridge; "
            f"ip addr add {self.GATEWAY}/24 dev br0; ip link set br0 up",
        )

    def attach(self, pid: int, names: list[str]) -> str:
        """Connect the network namespace of process `pid`; returns its address."""
        self.members += 1
        address = f"10.89.0.{self.members + 1}"
        veth = f"v{self.members}"
        _nsenter(
            self.pid,
            "ip",
            "link",
            "add",
            veth,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            str(pid),
        )
        _nsenter(self.pid, "ip", "link", "set", veth, "master", "br0", "up")
        _nsenter(pid, "sh", "-ec", f"ip addr add {address}/24 dev eth0; ip link set eth0 up")
        with self.hosts.open("a") as hosts:  # in place: every container binds this inode
            hosts.write(f"{address}\t{' '.join(names)}\n")
        return address

    def fetch(self, url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
        """GET `url` from the proxy's place in the network: (status, body); status 0 when
        nothing answers (what Traefik reports as Bad Gateway)."""
        args = [f"-H{k}: {v}" for k, v in (headers or {}).items()]
        result = subprocess.run(
            [
                "nsenter",
                "-t",
                str(self.pid),
                "-n",
                "--",
                "curl",
                "-sS",
                "--max-time",
                "30",
                "-w",
                "\n%{http_code}",
                *args,
                url,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        body, _, status = result.stdout.rpartition("\n")
        return int(status or 0), body

    def close(self) -> None:
        if self.holder is not None and self.holder.poll() is None:
            self.holder.kill()  # --kill-child: its sleep, hence the namespace, goes too
            self.holder.wait(timeout=10)


@dataclass
class Container:
    """A running container of `image` on `network`, started by `start`."""

    image: Image
    network: Network
    name: str
    env: dict[str, str]
    directory: Path
    aliases: list[str] = field(default_factory=list)
    volumes: dict[Path, str] = field(default_factory=dict)  # host dir -> path inside
    process: subprocess.Popen[bytes] | None = None
    pid: int = 0  # host PID of the container's PID 1
    address: str = ""
    started: float = 0.0

    @property
    def log(self) -> Path:
        return self.directory / "container.log"

    def start(self) -> Container:
        """`docker run`: PID 1 is `/bin/bash -l -c "<cmd>"` with the container's env."""
        assert self.image.cmd, "the image has no start command"
        self.directory.mkdir(parents=True, exist_ok=True)
        ready = self.directory / "network-attached"
        (self.directory / "rootfs").mkdir()
        volumes = [f"{host}:{path}" for host, path in self.volumes.items()]
        self.process = subprocess.Popen(
            [
                "unshare",
                "--pid",
                "--fork",
                "--kill-child",
                "--mount",
                "--net",
                "--",
                "bash",
                str(INIT),
                "run",
                str(self.directory / "rootfs"),
                str(self.image.root),
                str(self.directory / "layer"),
                str(self.network.hosts),
                str(ready),
                *volumes,
                "--",
                "/bin/bash",
                "-l",
                "-c",
                self.image.cmd,
            ],
            env=self.env,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        self.started = time.monotonic()
        self.pid = _child_pid(self.process.pid)
        self.address = self.network.attach(self.pid, [self.name, *self.aliases])
        ready.touch()
        return self

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def exec(self, command: str, timeout: float) -> int:
        """`docker exec` of `/bin/sh -c command` (how Docker runs a CMD-SHELL health check);
        its exit code, or 1 once `timeout` seconds pass (Docker counts that as a failure)."""
        try:
            return subprocess.run(
                [
                    "nsenter",
                    "-t",
                    str(self.pid),
                    "-m",
                    "-n",
                    "-p",
                    "-r",
                    "-w",
                    "--",
                    "/bin/sh",
                    "-c",
                    command,
                ],
                env=self.env,
                capture_output=True,
                timeout=timeout,
            ).returncode
        except (subprocess.TimeoutExpired, OSError):
            return 1

    def stop(self, grace: float) -> tuple[int, float]:
        """`docker stop --time=grace`: SIGTERM to PID 1, SIGKILL after `grace` seconds.

        Returns (exit code, seconds it took); exit code 137 means it had to be killed.
        """
        assert self.process is not None
        began = time.monotonic()
        if self.process.poll() is None:
            os.kill(self.pid, signal.SIGTERM)  # from the parent namespace, like dockerd
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
                return 137, time.monotonic() - began
        code = self.process.returncode
        return (128 - code if code < 0 else code), time.monotonic() - began

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self) -> None:
        """Teardown: SIGKILL whatever still runs (the namespace goes with its PID 1)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
