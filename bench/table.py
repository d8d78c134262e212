"""One row of the speed table, how the table is printed, and the p99 rows quote.

Every bench module that measures a row of issue 10's table returns :class:`Row` values;
``python -m bench`` (:mod:`bench.__main__`) collects them from one run and prints them
side by side, as Markdown, with their baselines and goals.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    """A measured row: what, the measure, what it is compared with, the goal, and if met."""

    what: str
    measured: str
    baseline: str
    goal: str
    met: bool


def markdown(rows: Iterable[Row]) -> str:
    """The rows as a Markdown table."""
    lines = ["| what | measured | baseline | goal | met |", "|---|---|---|---|---|"]
    for row in rows:
        met = "yes" if row.met else "**no**"
        lines.append(f"| {row.what} | {row.measured} | {row.baseline} | {row.goal} | {met} |")
    return "\n".join(lines)


def p99(values: list[float]) -> float:
    """The 99th percentile of ``values``; infinite with fewer than two (nothing to quote,
    and no goal met on nothing)."""
    if len(values) < 2:
        return float("inf")
    return statistics.quantiles(values, n=100)[98]
