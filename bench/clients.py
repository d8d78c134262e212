"""Keep-alive client threads that time their requests: the load of the API's rows.

:func:`run_clients` starts ``clients`` threads, each with its own ``httpx.Client`` (one
kept-alive connection), and has each call ``step`` until it returns ``False``. A step
makes one timed request and returns ``True``, or returns ``False`` without one when its
client is done; the latencies of every thread come back together with the wall
time, so that a row's rate is ``len(latencies) / wall``. A step that raises stops its
thread, and the first such error is raised again once every thread has ended.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

# One request of one client, made with ``http``: True, or False (and no request) when done.
Step = Callable[[httpx.Client], bool]


@dataclass(frozen=True)
class Load:
    """What the clients did: each request's latency (seconds) and the wall time."""

    latencies: list[float]
    wall_s: float

    @property
    def rate(self) -> float:
        """Requests per second over the wall time."""
        return len(self.latencies) / self.wall_s if self.wall_s > 0 else 0.0


def run_clients(
    url: str, headers: dict[str, str], clients: int, step: Step, *, timeout_s: float = 30.0
) -> Load:
    """Run ``clients`` threads of ``step`` against ``url`` until each step says stop."""
    latencies: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def client() -> None:
        mine: list[float] = []
        try:
            with httpx.Client(base_url=url, headers=headers, timeout=timeout_s) as http:
                while True:
                    started = time.perf_counter()
                    if not step(http):
                        break
                    mine.append(time.perf_counter() - started)
        except Exception as exc:
            with lock:
                errors.append(exc)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - started
    if errors:
        raise errors[0]
    return Load(latencies, wall)
