"""The database's lifecycle in this process, as one typed object (`app.state.lifecycle`).

The opener thread (api/main.py: open_in_background) moves it through its start-up phases and
finally to `READY` with the open `Database`; the lifespan's shutdown moves it to
`SHUTTING_DOWN`; the probes (api/routes/health.py) show `status()` while it is not ready, and
the routes reach the database through it (api/dependencies.py: get_database).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from starlette.datastructures import State

from api.db.checks import DataCheck, Heartbeat
from api.db.database import WAITING_FOR_LOCK, Database
from api.schemas import DEFAULT_YEARS, YearRange


class Phase(enum.Enum):
    """Where the database is; the value is what the probes show for it (docs/api.md)."""

    OPENING = "opening the database file"
    REPLAYING_WAL = "replaying the write-ahead log"
    WAITING_FOR_LOCK = WAITING_FOR_LOCK
    MIGRATING = "applying migrations"
    LOADING_DEMO_DATA = "loading the demo data"
    CHECKING_DATA = "reading every table once (data check)"
    READY = "ok"
    SHUTTING_DOWN = "shutting down"


@dataclass(frozen=True)
class Step:
    """A phase and its detail (e.g. the WAL's size), replaced as one value: a probe in
    another thread never sees the phase of one step with the detail of another."""

    phase: Phase
    detail: str | None = None

    def status(self) -> str:
        """The probes' text: `"<phase> (<detail>)"`, or the phase alone."""
        return f"{self.phase.value} ({self.detail})" if self.detail else self.phase.value


@dataclass
class DatabaseLifecycle:
    """The process's database: its current `step`, the open `database` (None until `READY`
    and again from `SHUTTING_DOWN`), the live readiness read (`heartbeat`) and the full read
    of every table (`data_check`), both api/db/checks.py; `years`, the years the data holds
    (a flight write's accepted range, read at `ready`)."""

    step: Step = field(default_factory=lambda: Step(Phase.OPENING))
    database: Database | None = None
    heartbeat: Heartbeat | None = None
    data_check: DataCheck = field(default_factory=DataCheck)
    years: YearRange = DEFAULT_YEARS

    def enter(self, phase: Phase, detail: str | None = None) -> None:
        """Move to a start-up `phase` (the opener thread, via `open_database`'s on_status)."""
        self.step = Step(phase, detail)

    def ready(self, database: Database, heartbeat: Heartbeat, years: YearRange) -> None:
        """The database is open and checked, its data holds `years`: the API serves from
        now on."""
        self.heartbeat = heartbeat
        self.years = years
        self.database = database
        self.step = Step(Phase.READY)

    def shut_down(self) -> Database | None:
        """Stop serving from the database; returns it (or None) for the caller to close."""
        database, self.database = self.database, None
        self.step = Step(Phase.SHUTTING_DOWN)
        return database


def lifecycle_of(state: State) -> DatabaseLifecycle:
    """The `DatabaseLifecycle` an app keeps in `app.state.lifecycle` (api/main.py)."""
    lifecycle: DatabaseLifecycle = state.lifecycle
    return lifecycle
