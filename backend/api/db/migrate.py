"""Schema migrations: the ordered SQL files in `api/db/migrations/` (`NNNN_name.sql`).

Each file not yet recorded in `schema_migrations` runs in its own transaction together with
its bookkeeping row, so a failed file leaves nothing behind. Running again applies nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import structlog

from api.db.database import run_query, transaction

logger = structlog.get_logger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


@dataclass(frozen=True)
class Migration:
    """One migration file: `version` (its number), `name` (file stem) and `path`."""

    version: int
    name: str
    path: Path


def discover_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Migration files in `directory`, ordered by version; raises ValueError on duplicates."""
    migrations = [
        Migration(version=int(path.name[:4]), name=path.stem, path=path)
        for path in sorted(directory.glob("[0-9][0-9][0-9][0-9]_*.sql"))
    ]
    versions = [m.version for m in migrations]
    if len(versions) != len(set(versions)):
        raise ValueError(f"duplicate migration versions in {directory}")
    return migrations


def apply_migrations(
    cursor: duckdb.DuckDBPyConnection, directory: Path = MIGRATIONS_DIR
) -> list[str]:
    """Apply pending migrations; return the names of those applied now (empty if none)."""
    run_query(cursor, "migrations_create_table")
    applied = {row[0] for row in run_query(cursor, "migrations_applied").rows}
    done: list[str] = []
    for migration in discover_migrations(directory):
        if migration.version in applied:
            continue
        with transaction(cursor):
            run_query(cursor, "migration", sql=migration.path.read_text(encoding="utf-8"))
            run_query(
                cursor,
                "migrations_record",
                {"version": migration.version, "name": migration.name},
            )
        logger.info("migration.applied", migration=migration.name)
        done.append(migration.name)
    return done
