"""Stopping a feature's work early once its run no longer owns the feature.

A canceled job's running features are marked ``canceled`` at once; the run working on one
finds out at its next progress report, or sooner here: the task runner installs a cheap
check for the current run (:func:`watching`; the worker's heartbeat thread already learns
which runs lost their feature), and the model gateway calls :func:`check` before each
model call and waits through :func:`wait`, so a rate-limit wait or a retry backoff of a
minute does not keep a canceled feature going. Like the deadline, the check lives in a
context variable: it follows the task's own thread and needs no parameter threaded
through every call. Without one installed (unit tests, scripts) nothing changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from refract.core.errors import Canceled

# Whether the current run has lost its feature (None: nothing to watch).
_stopped: ContextVar[Callable[[], bool] | None] = ContextVar("refract_interrupt", default=None)

# How often a long wait looks at the check: a canceled feature stops within about this.
WAIT_SLICE_S = 1.0


@contextmanager
def watching(stopped: Callable[[], bool]) -> Iterator[None]:
    """Within the block, :func:`check` and :func:`wait` stop once ``stopped()`` is true."""
    token = _stopped.set(stopped)
    try:
        yield
    finally:
        _stopped.reset(token)


def check(doing: str) -> None:
    """Raise :class:`~refract.core.errors.Canceled` if the current run must stop."""
    stopped = _stopped.get()
    if stopped is not None and stopped():
        raise Canceled(doing)


def wait(seconds: float, sleep: Callable[[float], None], doing: str) -> None:
    """Sleep ``seconds`` with ``sleep``, in slices that each look at the check first.

    Without a check installed it is one ``sleep(seconds)``, exactly as before.
    """
    if _stopped.get() is None:
        sleep(seconds)
        return
    left = seconds
    while left > 0:
        check(doing)
        step = min(WAIT_SLICE_S, left)
        sleep(step)
        left -= step
    check(doing)
