"""CPU limits with cgroup v1's `cpu` controller, for the load gate's self-tests.

`CpuLimit` makes a cgroup under /sys/fs/cgroup/cpu with a CFS bandwidth limit (`cores` of CPU
time per `period_us`) and removes it afterwards. Processes enter it with the command-line form
of this module, which joins the group and then *execs* the command, so the command (and every
child it starts) runs limited from its first instruction and keeps its pid::

    python tests/cgroups.py exec /sys/fs/cgroup/cpu/<group> -- <command> [args...]

The kernel's CFS bandwidth control: Documentation/scheduler/sched-bwc.rst (cpu.cfs_quota_us,
cpu.cfs_period_us). Needs root (the tests skip without a writable controller).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import uuid
from pathlib import Path
from types import TracebackType

CPU_CONTROLLER = Path("/sys/fs/cgroup/cpu")


def available() -> bool:
    """Whether this process can create cgroups with the v1 `cpu` controller."""
    return (CPU_CONTROLLER / "cpu.cfs_quota_us").exists() and os.access(CPU_CONTROLLER, os.W_OK)


class CpuLimit:
    """A cgroup allowing `cores` CPUs' worth of time per `period_us` microseconds.

    `cores=2/3` on a 2-core machine gives its members a third of the machine. A short
    `period_us` spreads the limit evenly (every burst of work runs slower), a long one lets
    bursts run at full speed and then stalls them. Use as a context manager; on exit every
    member still inside is moved back to the root group and the group is removed.
    """

    def __init__(self, cores: float, period_us: int = 100_000, name: str = "") -> None:
        if cores <= 0:
            raise ValueError("cores must be positive")
        self.cores = cores
        self.period_us = period_us
        self.path = CPU_CONTROLLER / (name or f"flights-test-{uuid.uuid4().hex[:8]}")

    def __enter__(self) -> CpuLimit:
        self.path.mkdir()
        (self.path / "cpu.cfs_period_us").write_text(str(self.period_us))
        (self.path / "cpu.cfs_quota_us").write_text(str(round(self.cores * self.period_us)))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for _ in range(50):
            members = (self.path / "cgroup.procs").read_text().split()
            for pid in members:  # leftovers (e.g. a process that outlived its test)
                with contextlib.suppress(OSError):  # already gone
                    (CPU_CONTROLLER / "cgroup.procs").write_text(pid)
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.1)

    def prefix(self) -> list[str]:
        """The argv prefix that runs a command inside this group (see the module doc)."""
        return [sys.executable, str(Path(__file__).resolve()), "exec", str(self.path), "--"]

    def throttled_seconds(self) -> float:
        """Seconds the group's members spent throttled so far (cpu.stat throttled_time)."""
        for line in (self.path / "cpu.stat").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "throttled_time":
                return int(value) / 1e9
        return 0.0


def main(argv: list[str]) -> int:
    """``exec <group> -- <command...>``: join the group, then exec the command."""
    if len(argv) < 4 or argv[0] != "exec" or argv[2] != "--":
        print("usage: cgroups.py exec <cgroup dir> -- <command> [args...]", file=sys.stderr)
        return 2
    (Path(argv[1]) / "cgroup.procs").write_text(str(os.getpid()))
    os.execvp(argv[3], argv[3:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
