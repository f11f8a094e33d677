"""The adaptive page budget (web/budget.py)."""

from __future__ import annotations

from tests.conftest import Clock
from web.budget import Budget


def test_fast_backend_gets_the_floor_slow_one_more_and_it_decays() -> None:
    clock = Clock(0.0)
    budget = Budget(floor=1.0, cap=5.0, half_life=10.0, clock=clock)
    budget.succeeded(0.05)
    assert budget.seconds() == 1.0  # twice 50 ms is below the floor
    budget.succeeded(1.3)  # a busy machine: pages waited 1.3 s
    assert budget.seconds() == 2.6
    clock.now += 10.0  # one half-life without slow answers
    assert abs(budget.seconds() - 1.3) < 1e-9
    clock.now += 100.0
    assert budget.seconds() == 1.0


def test_timeouts_double_the_budget_up_to_the_cap_and_a_success_ends_it() -> None:
    budget = Budget(floor=1.0, cap=5.0, clock=Clock(0.0))
    budget.succeeded(0.01)
    budget.timed_out(1.0)
    assert budget.seconds() == 2.0
    budget.timed_out(2.0)
    budget.timed_out(4.0)
    assert budget.seconds() == 5.0
    budget.succeeded(0.01)
    assert budget.seconds() == 1.0


def test_a_worker_without_an_answer_yet_allows_the_cap() -> None:
    # Regression: a new worker started at the floor, so a cold start slower than it failed the
    # worker's first pages in parallel and opened its circuit breaker (load gate, CI).
    budget = Budget(floor=1.0, cap=5.0, clock=Clock(0.0))
    assert budget.seconds() == 5.0
    budget.timed_out(5.0)  # a timeout is not an answer: still nothing learnt
    assert budget.seconds() == 5.0
    budget.succeeded(0.2)
    assert budget.seconds() == 1.0
