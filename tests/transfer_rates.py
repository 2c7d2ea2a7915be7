"""The transfer interval's rates asserted alike for every dataset: coverage of the true rho, and claims of
transfer (lower end above 0.5) at rho 0 and 0.9, each with a 1% binomial margin."""

from __future__ import annotations

from typing import Iterable

from scipy import stats


def assert_transfer_rates(intervals: Iterable[tuple[tuple[float, float], float]], rho: float, coverage: float) -> None:
    """``intervals``: (rho interval, true rho) of each run at the true ``rho``; ``coverage``: the least nominal
    coverage the runs must not fall clearly below."""
    covered = claimed = runs = 0
    for (lo, hi), truth in intervals:
        runs += 1
        covered += lo <= truth <= hi
        claimed += lo > 0.5
    assert covered >= stats.binom.ppf(0.01, runs, coverage), f"coverage {covered}/{runs} at rho {rho}"
    if rho == 0.0:
        assert claimed <= stats.binom.ppf(0.99, runs, 0.05), f"claimed {claimed}/{runs} at rho 0"
    if rho == 0.9:
        assert claimed >= stats.binom.ppf(0.01, runs, 0.80), f"claimed {claimed}/{runs} at rho 0.9"
