from pathlib import Path

from api.db.database import Database, run_query
from api.db.migrate import apply_migrations, discover_migrations


def test_migrations_apply_once_and_are_idempotent(tmp_path: Path) -> None:
    database = Database.open(tmp_path / "app.db")
    try:
        with database.session() as cursor:
            first = apply_migrations(cursor)
            second = apply_migrations(cursor)
            recorded = run_query(cursor, "migrations_applied").rows
    finally:
        database.close()
    names = [m.name for m in discover_migrations()]
    assert first == names and len(names) >= 2
    assert second == []
    assert [row[1] for row in recorded] == names


def test_migrations_survive_reopen(tmp_path: Path) -> None:
    for _ in range(2):
        database = Database.open(tmp_path / "app.db")
        with database.session() as cursor:
            apply_migrations(cursor)
            assert run_query(cursor, "demo_count_flights").scalar() == 0
        database.close()
