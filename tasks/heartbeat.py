"""Heartbeats: how a worker says that the features it runs are still alive.

Each worker process has one :class:`Heartbeats`: the runner adds a run when it claims a
feature and removes it once the outcome is stored; a single background thread refreshes
``heartbeat_at`` of every run it holds, every ``heartbeat_interval_s``, in one UPDATE. It
keeps beating while the task waits on the rate limiter, a retry or a slow image call, so
a feature is never taken for lost because it is slow. A worker that dies (SIGKILL, OOM, a
lost host) stops beating; ``refract.jobs.readiness.heartbeat_stopped`` then tells the
reconciler and the next claim that the feature may run again.

A run the beat no longer finds ``running`` under its own task id has lost its feature
(its job was canceled, another run took it over, the job was deleted): :meth:`stopped`
says so, cheaply, so that the run's long waits end early (:mod:`refract.core.interrupt`).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy import tuple_, update
from sqlalchemy.orm import Session

from refract.core.models import FeatureRun, utcnow
from refract.jobs.catalog import FeatureStatus

log = structlog.get_logger(__name__)

SessionScope = Callable[[], AbstractContextManager[Session]]


@dataclass(frozen=True)
class Beat:
    """One run this process works on: the feature of a job, under a task's claim."""

    job_id: uuid.UUID
    feature: str
    task_id: str


class Heartbeats:
    """The runs of this process and the thread that keeps their heartbeats fresh."""

    def __init__(
        self,
        session: SessionScope,
        interval_s: float,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        """``session`` opens a committing session; the thread starts with the first run."""
        self._session = session
        self.interval_s = interval_s
        self._clock = clock
        self._runs: set[Beat] = set()
        # Runs the last beat found no longer owning their feature.
        self._stopped: set[Beat] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, beat: Beat) -> None:
        """Keep ``beat`` alive from now on."""
        with self._lock:
            self._runs.add(beat)
            if self._thread is None or not self._thread.is_alive():
                self._stopping.clear()
                self._thread = threading.Thread(
                    target=self._run, name="refract-heartbeats", daemon=True
                )
                self._thread.start()

    def remove(self, beat: Beat) -> None:
        """Stop beating for ``beat`` (its outcome is stored, or it gave up)."""
        with self._lock:
            self._runs.discard(beat)
            self._stopped.discard(beat)

    def stopped(self, beat: Beat) -> bool:
        """Whether the last beat found ``beat`` no longer owning its feature (no query)."""
        with self._lock:
            return beat in self._stopped

    def beat_once(self) -> int:
        """Refresh the heartbeat of every run held, in one statement; returns rows touched.

        Only a run that still owns its feature (``running`` under the same task id) is
        refreshed: a run whose claim was taken over must not keep the new one's alive.
        """
        with self._lock:
            runs = list(self._runs)
        if not runs:
            return 0
        keys = [(beat.job_id, beat.feature, beat.task_id) for beat in runs]
        with self._session() as session:
            refreshed = session.execute(
                update(FeatureRun)
                .where(
                    tuple_(FeatureRun.job_id, FeatureRun.feature, FeatureRun.task_id).in_(keys),
                    FeatureRun.status == FeatureStatus.RUNNING.value,
                )
                # updated_at is kept: a heartbeat is bookkeeping, not a change to the run.
                .values(heartbeat_at=self._clock(), updated_at=FeatureRun.updated_at)
                .returning(FeatureRun.job_id, FeatureRun.feature, FeatureRun.task_id)
                .execution_options(synchronize_session=False)
            ).all()
        # Every refreshed row matched one of ``keys``, so its task id is set.
        owned = {Beat(job_id, feature, task_id or "") for job_id, feature, task_id in refreshed}
        with self._lock:
            # Only runs still held: one removed meanwhile has nothing left to stop.
            self._stopped |= {beat for beat in runs if beat not in owned} & self._runs
        return len(owned)

    def stop(self) -> None:
        """Stop the thread (it also stops on its own when the process exits)."""
        self._stopping.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=self.interval_s + 5)

    def _run(self) -> None:
        while not self._stopping.wait(self.interval_s):
            try:
                self.beat_once()
            except Exception as exc:  # the database may be down for a while: keep trying
                log.warning("heartbeat_failed", error=f"{type(exc).__name__}: {exc}")
