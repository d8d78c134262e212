"""The life of one feature run, shared by every feature task.

1. **Claim** the feature under the job's lock (:mod:`tasks.claims`): a finished feature,
   one whose inputs are not final, or one a live run holds, is left alone; this is what
   makes redelivery harmless.
2. **Work** outside any transaction, within the feature's deadline, while this process's
   heartbeat thread keeps the claim alive: the feature's own function reads its inputs by
   id, reports progress, and calls the model gateway.
3. **Store** the outcome (:mod:`tasks.outcomes`), retrying through database errors: the
   model's answer was paid for. The new state is published once it has committed.

A task never raises for a feature that failed: it records the failure and returns, so
that a chord waiting on it still fires (and ``card`` can be ``skipped``). A feature whose
job was canceled while it ran stops at its next step (:class:`Canceled`, raised by
:meth:`FeatureContext.report`, or sooner by the gateway's waits) and records nothing. A
run that was not part of a chord (a resend) sends the features waiting on it itself once
they are ready. :func:`run_feature` is the Celery side; :func:`execute_feature` is the run
itself, given the worker's services, which the task-layer tests call directly.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import redis
import structlog
from celery import Task
from sqlalchemy import select
from sqlalchemy.orm import Session

from refract.core import deadline, interrupt
from refract.core.db import database_unavailable
from refract.core.errors import Canceled, FeatureError, NotFound
from refract.core.models import FeatureRun, Job
from refract.gateway.base import ModelBackend, ModelReply
from refract.jobs.catalog import FEATURES, FeatureStatus
from refract.jobs.dispatch import enqueue
from refract.jobs.progress import Event
from refract.jobs.readiness import inputs_final
from refract.jobs.state import change_job, feature_event
from refract.observability import metrics
from tasks.claims import Skip, claim
from tasks.heartbeat import Beat
from tasks.outcomes import store_outcome, with_database_retries
from tasks.reporting import ProgressWriter, RunKey, progress_writer
from tasks.services import WorkerServices, get_services

log = structlog.get_logger(__name__)

# Sends features of a job to the broker (a run that was resent, not part of a chord).
Send = Callable[[uuid.UUID, list[str]], None]


@dataclass
class FeatureContext:
    """What a feature's work function gets: its job's inputs, services, progress."""

    job_id: uuid.UUID
    feature: str
    task_id: str
    kind: str
    language: str
    input: dict[str, Any]
    services: WorkerServices
    log: structlog.stdlib.BoundLogger = field(repr=False)
    # Reports written by the process's writer thread (the worker), not by this thread.
    writer: ProgressWriter | None = field(default=None, repr=False)

    @property
    def backend(self) -> ModelBackend:
        """The model backend of this worker."""
        return self.services.backend

    def session(self) -> AbstractContextManager[Session]:
        """A short session for reading inputs (commits on exit)."""
        return self.services.session()

    def report(self, progress: float, step: str) -> None:
        """Publish progress (0..1) with a step name, if this run still owns the feature.

        Best effort: a progress report that cannot be written (the database or Redis is
        down for a moment) is logged and skipped; it never fails the feature. A feature
        that was canceled raises :class:`Canceled`: the work stops here. With a
        ``writer`` (a worker's runs) the report is queued and this returns at once; a
        cancel the writer found stops the work at the next report.
        """
        if self.writer is not None:
            run = RunKey(self.job_id, self.feature, self.task_id)
            if self.writer.canceled(run):
                raise Canceled(step)
            self.writer.submit(run, progress, step)
            return

        def mutate(job: Job, runs: dict[str, FeatureRun]) -> list[Event]:
            run = runs[self.feature]
            if run.status == FeatureStatus.CANCELED.value:
                raise Canceled(step)
            if run.status != FeatureStatus.RUNNING.value or run.task_id != self.task_id:
                raise Skip("no longer owned")
            run.progress = max(run.progress, min(progress, 0.99))
            return [feature_event(str(job.id), run, step=step)]

        try:
            with self.services.session() as session:
                change_job(session, self.services.bus, self.job_id, mutate)
        except Canceled:
            raise
        except (Skip, NotFound):  # the run lost its claim, or the job is gone
            return
        except Exception as exc:
            self.log.warning("feature_progress_not_saved", step=step, error=type(exc).__name__)
            return
        self.log.info("feature_progress", progress=progress, step=step)


Work = Callable[[FeatureContext], ModelReply]


def run_feature(task: Task[Any, Any], job_id: str, feature: str, work: Work) -> dict[str, Any]:
    """Claim, run and record ``feature`` of ``job_id`` for a Celery task."""
    task_id = task.request.id or f"local-{uuid.uuid4()}"
    # A chord header's task has its callback waiting on it; a resent task has none, so it
    # sends the features that wait on it itself.
    send: Send | None = None
    if not task.request.chord:
        send = lambda job, features: enqueue(task.app, job, features)  # noqa: E731
    services = get_services()
    return execute_feature(
        services, job_id, feature, task_id, work, send=send, writer=progress_writer(services)
    )


def execute_feature(
    services: WorkerServices,
    job_id: str,
    feature: str,
    task_id: str,
    work: Work,
    *,
    send: Send | None = None,
    writer: ProgressWriter | None = None,
) -> dict[str, Any]:
    """Claim, run and record ``feature`` of ``job_id`` as run ``task_id``.

    Returns a small summary: ``outcome`` is the feature's final status, or ``noop`` when
    this run found nothing to do (finished, not ready, held by a live run, or its outcome
    could not be stored). ``send`` dispatches dependent features that became ready;
    ``writer`` takes the progress reports off this thread (without one, each report is
    written before the work goes on).
    """
    key = uuid.UUID(job_id)
    bound = log.bind(job_id=job_id, feature=feature, task_id=task_id)
    settings = services.settings

    def noop(reason: str) -> dict[str, Any]:
        return {"job_id": job_id, "feature": feature, "outcome": "noop", "reason": reason}

    def claim_it() -> tuple[Job, bool]:
        with services.session() as session:
            claimed = claim(session, services, key, feature, task_id)
            return claimed.job, claimed.exhausted

    try:
        job, exhausted = with_database_retries(
            claim_it, budget_s=settings.store_retry_s, what="claim"
        )
    except Skip as skip:
        bound.info("feature_skipped_run", reason=skip.reason)
        return noop(skip.reason)
    except NotFound:
        # The job was deleted after its message was sent: nothing to do.
        bound.warning("feature_job_missing")
        return noop("no such job")
    if exhausted:
        bound.warning("feature_attempts_exhausted", attempts=settings.max_attempts)
        _send_ready_dependents(services, key, feature, send, bound)
        return {"job_id": job_id, "feature": feature, "outcome": FeatureStatus.FAILED.value}

    ctx = FeatureContext(
        job_id=key,
        feature=feature,
        task_id=task_id,
        kind=job.kind,
        language=job.language,
        input=dict(job.input or {}),
        services=services,
        log=bound,
        writer=writer,
    )
    beat = Beat(key, feature, task_id)
    run_key = RunKey(key, feature, task_id)
    services.heartbeats.add(beat)

    def lost() -> bool:
        # The heartbeat (or the progress writer) learns when the run lost its feature:
        # long waits then end early.
        return services.heartbeats.stopped(beat) or (
            writer is not None and writer.canceled(run_key)
        )

    try:
        bound.info("feature_started")
        with interrupt.watching(lost):
            reply, error = _work(ctx, work, settings.deadline_s(feature))
        # A report not written yet goes out with the outcome rather than before it.
        unwritten = writer.finish(run_key) if writer is not None else None
        step = (unwritten.progress, unwritten.step) if unwritten is not None else None
        outcome = _record(services, ctx, reply, error, step)
    except DependencyUnreachable as exc:
        # The heartbeat stops with this run: the reconciler sends the feature again.
        bound.error("feature_dependency_unreachable", error=type(exc.__cause__).__name__)
        outcome = None
    except Canceled as exc:
        # Canceled (or taken over) while it worked: whatever it did is not recorded, and
        # its dependents were canceled with it (or belong to the run that took over).
        bound.info("feature_run_stopped", doing=exc.doing)
        return noop("canceled")
    finally:
        services.heartbeats.remove(beat)
        if writer is not None:
            writer.finish(run_key)
    if outcome is None:
        return noop("outcome not stored")
    if outcome != "noop":
        _send_ready_dependents(services, key, feature, send, bound)
        return {"job_id": job_id, "feature": feature, "outcome": outcome}
    return noop("outcome already recorded by another run")


class DependencyUnreachable(Exception):
    """The database or Redis stayed out of reach while the feature worked."""


# Redis errors that mean "not reachable now" (a restart, a blip), never a feature's fault.
_REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


def _work(
    ctx: FeatureContext, work: Work, deadline_s: float
) -> tuple[ModelReply | None, FeatureError | None]:
    """Run the feature's work within its deadline; a failure is returned, never raised.

    The work reads its inputs from the database before it calls the model, so a database
    that cannot be reached is retried like a store (never an ``internal_error``: it is
    the database's fault, not the feature's); if it stays out of reach, or Redis does
    past what the work retries itself (the rate limiter waits out a blip),
    :class:`DependencyUnreachable` leaves the feature to be run again.
    """
    try:
        with deadline.within(deadline_s):
            budget = min(ctx.services.settings.store_retry_s, deadline.remaining_s() or 0.0)
            reply = with_database_retries(lambda: work(ctx), budget_s=budget, what="read inputs")
            return reply, None
    except FeatureError as exc:
        return None, exc
    except Canceled:
        raise  # not a failure of the feature: the run stops without an outcome
    except Exception as exc:
        if database_unavailable(exc) or isinstance(exc, _REDIS_DOWN):
            raise DependencyUnreachable from exc
        # A bug or an unexpected failure: recorded, never left running.
        reference = uuid.uuid4().hex[:12]
        ctx.log.exception("feature_crashed", error_ref=reference)
        return None, FeatureError(
            "internal_error",
            "an unexpected error stopped this feature; quote the reference to the operators",
            reference=reference,
        )


def _record(
    services: WorkerServices,
    ctx: FeatureContext,
    reply: ModelReply | None,
    error: FeatureError | None,
    step: tuple[float, str] | None = None,
) -> str | None:
    """Store the outcome (after ``step``, a report not written yet); the stored status,
    ``"noop"`` if another run owns the feature, or ``None`` if the database stayed out of
    reach (the feature will be run again)."""
    budget = services.settings.store_retry_s

    def store(reply: ModelReply | None, error: FeatureError | None) -> Job:
        return with_database_retries(
            lambda: store_outcome(
                services, ctx.job_id, ctx.feature, ctx.task_id, reply, error, step
            ),
            budget_s=budget,
            what="store outcome",
        )

    try:
        try:
            job = store(reply, error)
        except FeatureError as exc:  # the model's image failed our checks
            error = exc
            job = store(None, exc)
    except Skip as skip:
        ctx.log.info("feature_outcome_dropped", reason=skip.reason)
        return "noop"
    except NotFound:
        # The job was erased while this run worked (DELETE): nothing is left to store.
        ctx.log.info("feature_outcome_dropped", reason="the job was deleted")
        return "noop"
    except Exception as exc:
        # The paid answer could not be kept: the heartbeat stops, and the feature is sent
        # again once it is seen as lost.
        ctx.log.error("feature_outcome_lost", error=type(exc).__name__, exc_info=exc)
        return None
    outcome = error.status if error else FeatureStatus.SUCCEEDED.value
    ctx.log.info(
        "feature_finished",
        outcome=outcome,
        job_status=job.status,
        error_code=error.code if error else None,
    )
    metrics.run_finished(job, ctx.feature, services.backend.name)
    return outcome


def _send_ready_dependents(
    services: WorkerServices,
    job_id: uuid.UUID,
    feature: str,
    send: Send | None,
    bound: structlog.stdlib.BoundLogger,
) -> None:
    """Send the features waiting on ``feature`` that are now ready (resent runs only)."""
    dependents = [name for name, spec in FEATURES.items() if feature in spec.needs]
    if send is None or not dependents:
        return
    try:
        with services.session() as session:
            runs = {
                run.feature: run
                for run in session.scalars(select(FeatureRun).where(FeatureRun.job_id == job_id))
            }
        ready = [
            name
            for name in dependents
            if name in runs
            and runs[name].status == FeatureStatus.WAITING.value
            and inputs_final(name, runs)
        ]
        if ready:
            send(job_id, ready)
            bound.info("feature_dependents_sent", features=ready)
    except Exception as exc:  # the reconciler sends them when this cannot
        bound.warning("feature_dependents_not_sent", error=type(exc).__name__)
