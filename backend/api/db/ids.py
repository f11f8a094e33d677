"""Ids for new rows, handed out from blocks that the one backend process reserves.

Every create used to take its id by updating one `id_counters` row inside its own
transaction; DuckDB's optimistic concurrency made concurrent creates conflict on that row
(50 at once: about half answered 409). Now `IdBlocks.next_id` hands ids out of memory and only
every `BLOCK_SIZE`-th call reserves a new block, in a short transaction of its own that
advances the counter row by `BLOCK_SIZE`, one reservation at a time (a lock), so no writer ever
conflicts on the counter.

Why this is safe: exactly one process owns the database file (DuckDB allows one writer
process), so no other process takes ids from the same counter. A block is committed before
any of its ids is used, so after a crash or restart the next block starts after every id
ever handed out: ids are never reused, even those of deleted flights. The cost is a gap of
at most one block's unused ids per restart. The demo data keeps its ids (1..336,776): the
loader sets the counter past them.
"""

from __future__ import annotations

import threading

import duckdb

from api.db.database import retry_on_conflict, run_query, transaction

# Ids reserved per counter update. Gaps after a restart are at most this long; ids are
# BIGINT, so gaps are free.
BLOCK_SIZE = 1000


class IdBlocks:
    """Thread-safe source of new ids for the table named `name` in `id_counters`.

    `next_id(cursor)` returns an int never returned before for this database (the counter
    row must exist: migration 0002 creates it). Raises `duckdb.Error` when a reservation
    fails (e.g. disk full); the failed reservation hands out nothing.
    """

    def __init__(self, name: str = "flights", block_size: int = BLOCK_SIZE) -> None:
        self.name = name
        self.block_size = block_size
        self._lock = threading.Lock()
        self._next = 0
        self._end = 0  # exclusive: the block is [_next, _end)

    def next_id(self, cursor: duckdb.DuckDBPyConnection) -> int:
        """The next id; reserves a new block on `cursor` (outside any transaction of it)."""
        with self._lock:
            if self._next >= self._end:
                self._next, self._end = self._reserve(cursor)
            value = self._next
            self._next += 1
            return value

    def _reserve(self, cursor: duckdb.DuckDBPyConnection) -> tuple[int, int]:
        def reserve() -> int:
            with transaction(cursor):
                params = {"name": self.name, "count": self.block_size}
                # RETURNING gives the counter after the update: the block ends there.
                return int(run_query(cursor, "id_block_reserve", params).scalar())

        end = retry_on_conflict(reserve)
        return end - self.block_size, end
