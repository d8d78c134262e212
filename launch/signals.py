"""Stopping ``refract up`` and ``refract demo`` the same way whatever asks them to stop.

Ctrl-C (SIGINT), ``kill`` or a service manager (SIGTERM) and a closed terminal or SSH
session (SIGHUP) must all end in the same clean-up: every child process stopped, the
embedded Redis last. Python turns only SIGINT into :class:`KeyboardInterrupt`; SIGTERM and
SIGHUP would end the process at once and leave its children running. Here all three raise
:class:`KeyboardInterrupt` once, so the code's ``finally`` blocks run; a second signal
while the clean-up is under way is ignored rather than cutting it short.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextmanager
def interrupt_on_stop_signals() -> Iterator[None]:
    """Within the block, the first SIGINT, SIGTERM or SIGHUP raises KeyboardInterrupt and
    later ones are ignored; the previous handlers come back afterwards."""
    received: list[int] = []

    def _interrupt(signum: int, _frame: FrameType | None) -> None:
        if received:
            return  # already stopping: let the clean-up finish
        received.append(signum)
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, _interrupt) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
