"""Jinja filters for numbers, delays, shares and clock times. All return display strings."""

from __future__ import annotations

from typing import Any

from flask import Flask

MISSING = "—"
# Typographic minus: reads better than a hyphen in figures.
MINUS = "\u2212"


def thousands(value: Any) -> str:
    """336776 -> ``"336,776"``; None -> an em dash."""
    if value is None:
        return MISSING
    return f"{value:,.0f}"


def minutes(value: Any) -> str:
    """A delay in minutes with one decimal: 12.345 -> ``"12.3 min"``; None -> an em dash."""
    if value is None:
        return MISSING
    return f"{value:,.1f} min".replace("-", MINUS)


def percent(value: Any) -> str:
    """A share in 0..1 as a percentage with one decimal: 0.7812 -> ``"78.1 %"``."""
    if value is None:
        return MISSING
    return f"{value * 100:.1f} %"


def clock(value: Any) -> str:
    """An HHMM integer as ``HH:MM``: 517 -> ``"05:17"``; 2400 stays ``"24:00"``; None -> dash."""
    if value is None:
        return MISSING
    value = int(value)
    return f"{value // 100:02d}:{value % 100:02d}"


def signed(value: Any) -> str:
    """Whole minutes with an explicit sign: 5 -> ``"+5"``, -3 -> ``"-3"`` (typographic minus).

    None -> an em dash.
    """
    if value is None:
        return MISSING
    value = int(value)
    return f"+{value}" if value > 0 else str(value).replace("-", MINUS)


def register_filters(app: Flask) -> None:
    """Make the filters above available in templates under their function names."""
    for f in (thousands, minutes, percent, clock, signed):
        app.jinja_env.filters[f.__name__] = f
