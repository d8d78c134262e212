"""Progress reports off the critical path: one writer thread per worker process.

A report used to be a transaction of its own on the job's row lock, taken by the task's
thread before it could go on (two or three per feature, each queued behind the other
features of the same job). A report is not what the visitor waits for: the answer is.
:class:`ProgressWriter` takes a report, returns at once, and writes it from its own
thread: the reports of all the runs of one job that are waiting are written in one
transaction (one lock, one publish), and a run's newer report replaces an older one not
yet written. A run whose outcome is being stored takes its unwritten report back: the
outcome's transaction publishes it just before the outcome, so the step is still seen.
A report the thread has already taken is waited for instead (a few milliseconds): were
the outcome committed first, the report would find the run finished and be dropped.

What a synchronous report did besides, the writer does too: progress is written only
while the run owns its feature (``running`` under its task id), and a run the writer
finds canceled is remembered, so that its next report raises :class:`Canceled` and its
long waits end early (:meth:`ProgressWriter.canceled`, watched by the runner).
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass

import structlog

from refract.core.errors import NotFound
from refract.core.models import FeatureRun, Job
from refract.jobs.catalog import FeatureStatus
from refract.jobs.progress import Event
from refract.jobs.state import change_job, feature_event
from tasks.claims import Skip
from tasks.services import WorkerServices

log = structlog.get_logger(__name__)

# How long the writer gathers reports before it writes them (seconds).
GATHER_S = 0.05
# The longest a finishing run waits for its report being written (the database may be
# slow or down: the outcome, which has its own retries, must not wait long for a step).
FINISH_WAIT_S = 2.0


@dataclass(frozen=True)
class RunKey:
    """One run: the feature of a job, under a task's claim."""

    job_id: uuid.UUID
    feature: str
    task_id: str


@dataclass(frozen=True)
class Report:
    """The latest progress a run reported, not yet written."""

    progress: float
    step: str


class ProgressWriter:
    """Writes the runs' progress reports from one background thread (see the module)."""

    def __init__(self, services: WorkerServices) -> None:
        """The thread starts with the first report."""
        self._services = services
        self._pending: dict[RunKey, Report] = {}
        self._canceled: set[RunKey] = set()
        # Runs between their first report and their end: only they can be found canceled.
        self._active: set[RunKey] = set()
        self._writing = False
        # Runs whose reports the thread has taken and not yet finished writing.
        self._in_flight: set[RunKey] = set()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def submit(self, run: RunKey, progress: float, step: str) -> None:
        """Queue ``run``'s report (replacing one not yet written) and return at once."""
        with self._changed:
            earlier = self._pending.get(run)
            if earlier is not None:
                progress = max(progress, earlier.progress)
            self._pending[run] = Report(progress, step)
            self._active.add(run)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="refract-progress", daemon=True
                )
                self._thread.start()
            self._changed.notify_all()

    def canceled(self, run: RunKey) -> bool:
        """Whether a write found ``run``'s feature canceled (no query)."""
        with self._changed:
            return run in self._canceled

    def finish(self, run: RunKey) -> Report | None:
        """Forget ``run``; its report not yet written, if any, is returned for the
        outcome's own transaction to publish (so nobody waits for it to be written). A
        report being written now is waited for (at most ``FINISH_WAIT_S``), so that it is
        committed before the outcome and not dropped."""
        with self._changed:
            self._changed.wait_for(lambda: run not in self._in_flight, timeout=FINISH_WAIT_S)
            report = self._pending.pop(run, None)
            self._canceled.discard(run)
            self._active.discard(run)
        return report

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until every queued report is written; ``False`` on timeout (for tests)."""
        with self._changed:
            return self._changed.wait_for(
                lambda: not self._pending and not self._writing, timeout=timeout_s
            )

    def _run(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: bool(self._pending))
            # A moment for the job's other runs (claimed together) to report too: their
            # reports then go out in one transaction, and a run's quick second report
            # replaces its first instead of following it.
            time.sleep(GATHER_S)
            with self._changed:
                batch, self._pending = self._pending, {}
                self._writing = True
                self._in_flight = set(batch)
            try:
                by_job: dict[uuid.UUID, dict[RunKey, Report]] = {}
                for run, report in batch.items():
                    by_job.setdefault(run.job_id, {})[run] = report
                for job_id, reports in by_job.items():
                    self._write(job_id, reports)
                    with self._changed:
                        # This job's runs may finish now: their steps are committed.
                        self._in_flight -= set(reports)
                        self._changed.notify_all()
            finally:
                with self._changed:
                    self._writing = False
                    self._in_flight = set()
                    self._changed.notify_all()

    def _write(self, job_id: uuid.UUID, reports: dict[RunKey, Report]) -> None:
        """One job's reports in one transaction; best effort, never raises."""
        canceled: set[RunKey] = set()

        def mutate(job: Job, runs: dict[str, FeatureRun]) -> list[Event]:
            events = []
            for run_key, report in reports.items():
                run = runs.get(run_key.feature)
                if run is None:
                    continue
                if run.status == FeatureStatus.CANCELED.value:
                    canceled.add(run_key)
                    continue
                if run.status != FeatureStatus.RUNNING.value or run.task_id != run_key.task_id:
                    continue  # the run lost its claim: its progress is not the feature's
                run.progress = max(run.progress, min(report.progress, 0.99))
                events.append(feature_event(str(job.id), run, step=report.step))
            if not events:
                raise Skip("nothing to report")  # no version bump, no publish
            return events

        try:
            with self._services.session() as session:
                change_job(session, self._services.bus, job_id, mutate)
        except (Skip, NotFound):
            pass
        except Exception as exc:  # the database or Redis is down for a moment
            log.warning("feature_progress_not_saved", job_id=str(job_id), error=type(exc).__name__)
        if canceled:
            with self._changed:
                # Only runs still going: one that finished meanwhile has nothing to stop.
                self._canceled |= canceled & self._active
        for run_key, report in reports.items():
            log.debug("feature_progress", feature=run_key.feature, progress=report.progress)


_lock = threading.Lock()
_writer: tuple[WorkerServices, ProgressWriter] | None = None


def progress_writer(services: WorkerServices) -> ProgressWriter:
    """The writer of ``services`` (a process has one set of services, so one writer; a
    new set, after a fork or in tests, gets a new one)."""
    global _writer
    with _lock:
        if _writer is None or _writer[0] is not services:
            _writer = (services, ProgressWriter(services))
        return _writer[1]
