"""A time budget for one feature's work, seen by every wait and call inside it.

The task runner opens :func:`within` around a feature's work; the model gateway and the
rate limiter then never wait or call past it: :func:`bounded` shortens a timeout to what
is left, :func:`check` fails the feature with ``deadline_exceeded`` once nothing is. The
budget lives in a context variable, so it follows the task's own thread (the worker runs
tasks in a thread pool) and needs no parameter threaded through every call.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from refract.core.errors import FeatureError

Clock = Callable[[], float]

# The monotonic time by which the current feature's work must be done (None: unbounded).
_ends_at: ContextVar[float | None] = ContextVar("refract_deadline", default=None)


@contextmanager
def within(seconds: float, *, clock: Clock = time.monotonic) -> Iterator[None]:
    """Bound the work inside the block to ``seconds`` (an inner bound cannot extend it)."""
    ends_at = clock() + seconds
    outer = _ends_at.get()
    token = _ends_at.set(ends_at if outer is None else min(outer, ends_at))
    try:
        yield
    finally:
        _ends_at.reset(token)


def remaining_s(*, clock: Clock = time.monotonic) -> float | None:
    """Seconds left in the current budget; ``None`` when there is none."""
    ends_at = _ends_at.get()
    return None if ends_at is None else ends_at - clock()


def check(doing: str, *, clock: Clock = time.monotonic) -> None:
    """Fail with ``deadline_exceeded`` if the budget is spent (``doing`` says where)."""
    left = remaining_s(clock=clock)
    if left is not None and left <= 0:
        raise exceeded(doing)


def bounded(timeout_s: float, doing: str, *, clock: Clock = time.monotonic) -> float:
    """``timeout_s``, shortened to the budget left; ``deadline_exceeded`` if none is."""
    left = remaining_s(clock=clock)
    if left is None:
        return timeout_s
    if left <= 0:
        raise exceeded(doing)
    return min(timeout_s, left)


def exceeded(doing: str) -> FeatureError:
    """The error of a feature whose time ran out while ``doing``."""
    return FeatureError("deadline_exceeded", f"the feature ran out of time while {doing}")
