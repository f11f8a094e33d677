"""Exact percentiles of response times (shared by bench/loadgen.py and bench/run.py).

A module of its own because loadgen.py imports Locust, which monkey-patches the standard
library with gevent on import: bench/run.py must not import it.
"""

from __future__ import annotations

import statistics


def percentile(values: list[float], q: float) -> float | None:
    """The q-quantile (0..1) of `values` (inclusive method); None when empty."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=1000, method="inclusive")[round(q * 1000) - 1]
