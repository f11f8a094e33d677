"""A Coolify rolling deploy of the backend under steady load through the frontend, in both
health-check modes: nobody notices it.

What Coolify does (coollabsio/coolify at the commit named in tests/coolify.py, the job is
app/Jobs/ApplicationDeploymentJob.php): `start_by_compose_file()`, `health_check()`, then
`stop_running_container()` (job:1972-1976). With the health check off, `health_check()`
counts the new container healthy at once (job:1991-1994), so the old one is stopped as soon
as the new one has started; on, Coolify waits for Docker's health check (job:1985-2061,
mirrored by `coolify.wait_until_healthy`). The old container is stopped with
`docker stop --time=<Stop grace period>` (graceful_shutdown_container, job:3971-3986): SIGTERM,
SIGKILL after the period (30 s, bootstrap/helpers/constants.php:38). While both run, both
carry the network alias, and Docker's DNS answers the alias with both addresses in turn; the
new backend cannot open the DuckDB file until the old one closes it.

Here: real backend processes on one real DuckDB file, the real frontend (gunicorn, its
production budget and breaker settings), and `RoundRobin`, a fake of Docker's DNS round-robin
that speaks plain TCP: each new connection goes to the next backend that carries the alias
(from its start until it has exited), and a backend that does not listen (yet, or any more)
refuses it. Load: reader threads load pages, writer threads submit the new-flight form (a
fresh form each time: its CSRF token and Idempotency-Key). The test asserts that no request
failed and that every acknowledged write is in the database exactly once; it prints the
figures (docs/resilience.md) and asserts no timing beyond generous bounds.
"""

from __future__ import annotations

import contextlib
import random
import re
import socket
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from conftest import BACKEND_DIR, Service, backend_service, copy_db, frontend_service
from coolify import DEFAULT_STOP_GRACE_PERIOD, Application, HealthCheck, wait_until_healthy

pytestmark = pytest.mark.timeout(240)

READERS = 4
WRITERS = 2
STEADY_SECONDS = 2.0  # load before the deploy starts, and again once it is over
FLIGHT_BASE = 9000  # flight numbers of the writes (the demo data's end below 9000)


class RoundRobin(threading.Thread):
    """A TCP listener on 127.0.0.1 that hands each new connection to the next of `targets`
    (ports), as clients resolving a Docker network alias get each container in turn. A target
    that refuses is not skipped: the client's connection is closed without an answer, as a
    connection to a container that does not listen is refused. `targets` is changed by the
    test (a container joins the alias when it starts and leaves when it has stopped)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.targets: list[int] = []
        self._lock = threading.Lock()
        self._turn = 0
        self._closed = False

    def set_targets(self, ports: list[int]) -> None:
        with self._lock:
            self.targets = list(ports)

    def _next(self) -> int | None:
        with self._lock:
            if not self.targets:
                return None
            self._turn += 1
            return self.targets[self._turn % len(self.targets)]

    def run(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        port = self._next()
        try:
            upstream = socket.create_connection(("127.0.0.1", port), timeout=5) if port else None
        except OSError:
            upstream = None
        if upstream is None:
            client.close()
            return
        upstream.settimeout(None)
        pumps = [
            threading.Thread(target=_pump, args=(client, upstream), daemon=True),
            threading.Thread(target=_pump, args=(upstream, client), daemon=True),
        ]
        for pump in pumps:
            pump.start()
        for pump in pumps:
            pump.join()
        client.close()
        upstream.close()

    def close(self) -> None:
        self._closed = True
        self.listener.close()


def _pump(source: socket.socket, target: socket.socket) -> None:
    """Copy bytes until EOF (passed on as a half-close) or an error (both sides closed)."""
    try:
        while chunk := source.recv(65536):
            target.sendall(chunk)
        target.shutdown(socket.SHUT_WR)
    except OSError:
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class ProcessAsContainer:
    """What `coolify.wait_until_healthy` needs of a container, for a backend process: its
    start time, whether it runs, and `docker exec` of the health-check command (here a shell
    on the host, where `localhost:<port>` is the process as it is inside its container)."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.started = time.monotonic()

    def running(self) -> bool:
        return self.service.process is not None and self.service.process.poll() is None

    def exec(self, command: str, timeout: float) -> int:
        try:
            return subprocess.run(["/bin/sh", "-c", command], timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            return 1


@dataclass
class Load:
    """Steady load through the frontend; every outcome is counted."""

    url: str
    stop: threading.Event = field(default_factory=threading.Event)
    sent: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    acked: list[int] = field(default_factory=list)  # flight numbers of acknowledged writes
    flight_ids: list[int] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _next_flight: int = FLIGHT_BASE

    def _fail(self, what: str) -> None:
        with self._lock:
            self.failures.append(f"{time.strftime('%H:%M:%S')} {what}")

    def _count(self, kind: str) -> None:
        with self._lock:
            self.sent[kind] += 1

    def read(self) -> None:
        pages = ["/", "/flights?origin=JFK", "/flights?carrier=UA&origin=EWR"]
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self.stop.is_set():
                with self._lock:
                    ids = list(self.flight_ids[-20:])
                path = random.choice(pages + [f"/flights/{i}" for i in ids[-2:]])
                self._count("read")
                try:
                    response = client.get(path)
                except httpx.HTTPError as exc:
                    self._fail(f"GET {path}: {type(exc).__name__}")
                    continue
                if response.status_code != 200:
                    self._fail(f"GET {path}: {response.status_code}")

    def write(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self.stop.is_set():
                with self._lock:
                    flight, self._next_flight = self._next_flight, self._next_flight + 1
                self._count("write")
                try:
                    form = client.get("/flights/new")
                    fields = dict(
                        re.findall(
                            r'name="(csrf_token|idempotency_key)"[^>]*value="([^"]+)"', form.text
                        )
                    )
                    if form.status_code != 200 or len(fields) != 2:
                        self._fail(f"GET /flights/new: {form.status_code}")
                        continue
                    data = {
                        **fields,
                        "date": "2013-12-24",
                        "carrier": "B6",
                        "flight": str(flight),
                        "origin": "JFK",
                        "dest": "BOS",
                        "sched_dep_time": "1700",
                        "sched_arr_time": "1810",
                    }
                    saved = client.post("/flights/new", data=data)
                except httpx.HTTPError as exc:
                    self._fail(f"write {flight}: {type(exc).__name__}")
                    continue
                location = saved.headers.get("location", "")
                if saved.status_code != 303 or not re.search(r"/flights/\d+$", location):
                    self._fail(f"POST /flights/new {flight}: {saved.status_code}")
                    continue
                with self._lock:
                    self.acked.append(flight)
                    self.flight_ids.append(int(location.rsplit("/", 1)[1]))

    def start(self) -> list[threading.Thread]:
        threads = [threading.Thread(target=self.read, daemon=True) for _ in range(READERS)]
        threads += [threading.Thread(target=self.write, daemon=True) for _ in range(WRITERS)]
        for thread in threads:
            thread.start()
        return threads


def ready(service: Service) -> bool:
    try:
        return httpx.get(service.url + "/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def stored_writes(db_path: Path) -> Counter[int]:
    """Rows per flight number >= FLIGHT_BASE, read from the closed file with the backend's
    DuckDB."""
    script = (
        "import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=True); "
        "print('\\n'.join(f'{f} {n}' for f, n in c.execute("
        f"'SELECT flight, count(*) FROM flights WHERE flight >= {FLIGHT_BASE} GROUP BY 1'"
        ").fetchall()))"
    )
    out = subprocess.run(
        [str(BACKEND_DIR / ".venv/bin/python"), "-c", script, str(db_path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return Counter({int(f): int(n) for f, n in (line.split() for line in out.splitlines())})


@pytest.mark.parametrize("health_check", ["enabled", "disabled"])
def test_a_rolling_deploy_under_load_is_not_noticed(
    health_check: str, demo_db: Path, log_dir: Path, tmp_path: Path
) -> None:
    db_path = copy_db(demo_db, tmp_path)
    alias = RoundRobin()
    alias.start()
    # SHUTDOWN_DRAIN_SECONDS: the production default (api/settings.py); tests run in development.
    old = backend_service(db_path, log_dir, SHUTDOWN_DRAIN_SECONDS="8").start()
    alias.set_targets([old.port])
    # The production budget and breaker (web/settings.py defaults), not the system tests' 5 s.
    frontend = frontend_service(
        f"http://127.0.0.1:{alias.port}", log_dir, BACKEND_READ_TIMEOUT_SECONDS="0.8"
    ).start()
    new = backend_service(
        db_path, log_dir, DB_LOCK_TIMEOUT_SECONDS="120", SHUTDOWN_DRAIN_SECONDS="8"
    )
    load = Load(frontend.url)
    threads: list[threading.Thread] = []
    try:
        threads = load.start()
        time.sleep(STEADY_SECONDS)

        # start_by_compose_file(): the new container runs and carries the alias at once.
        new.process = subprocess.Popen(
            new.argv, cwd=new.cwd, env=new.env, stdout=new.log_path.open("ab"),
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        started = time.monotonic()
        alias.set_targets([old.port, new.port])
        app = Application(
            name="backend",
            base_directory="/backend",
            ports_exposes=str(new.port),
            health_check=HealthCheck(enabled=health_check == "enabled", path="/health"),
        )
        report = wait_until_healthy(ProcessAsContainer(new), app)  # type: ignore[arg-type]
        assert report.healthy, report.statuses

        # stop_running_container(): docker stop --time=<grace> of the old one.
        sigterm = time.monotonic()
        assert old.process is not None
        exit_code = old.stop(timeout=app.grace)  # SIGTERM, SIGKILL after the grace period
        stopped = time.monotonic()
        alias.set_targets([new.port])  # an exited container leaves the alias
        while not ready(new):
            assert time.monotonic() - started < 120, new.log_tail()
            time.sleep(0.05)
        now_ready = time.monotonic()
        time.sleep(STEADY_SECONDS)
    finally:
        load.stop.set()
        for thread in threads:
            thread.join(timeout=60)
        frontend.stop()
        old.stop()
        new_code = new.stop()
        alias.close()

    stored = stored_writes(db_path)
    found = [flight for flight in load.acked if stored.get(flight) == 1]
    print(
        f"\nrolling deploy, health check {health_check}: requests sent {sum(load.sent.values())}"
        f" ({load.sent['read']} page loads, {load.sent['write']} form submissions), "
        f"user-visible failures {len(load.failures)}, writes acknowledged {len(load.acked)}, "
        f"found exactly once {len(found)}; new backend ready {now_ready - started:.2f} s after "
        f"it started, {now_ready - sigterm:.2f} s after the old one got SIGTERM (which took "
        f"{stopped - sigterm:.2f} s to exit, code {exit_code}); health check "
        f"{report.seconds:.1f} s {report.statuses}"
    )
    assert load.failures == [], load.failures[:20]
    assert exit_code == 0, "the old backend had to be killed, or failed to stop"
    assert new_code == 0
    assert load.sent["read"] > 0 and len(load.acked) > 0
    assert found == load.acked, {f: stored.get(f) for f in load.acked if stored.get(f) != 1}
    # Unacknowledged writes (none, when nothing failed) may be stored too, but never twice.
    assert all(n == 1 for n in stored.values()), stored
    assert stopped - sigterm < DEFAULT_STOP_GRACE_PERIOD
