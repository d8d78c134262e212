"""The life of one feature run, shared by every feature task.

1. **Claim** the feature under the job's lock: a finished feature, one whose inputs are
   not final, or one another live copy of the task is running, is left alone (this is
   what makes redelivery harmless).
2. **Work** outside any transaction: the feature's own function reads its inputs by id,
   reports progress, and calls the model gateway once.
3. **Store** the outcome with an upsert keyed by (job, feature), recompute the job's
   status, publish the snapshot and events.

A task never raises for a feature that failed: it records the failure and returns, so
that a chord waiting on it still fires (and ``card`` can be ``skipped``).
:func:`run_feature` is the Celery side; :func:`execute_feature` is the run itself, given
the worker's services, which the task-layer tests call directly.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import structlog
from celery import Task
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from refract.core.errors import FeatureError, NotFound, ProblemError
from refract.core.models import FeatureRun, Job, utcnow
from refract.core.results import ImageResult
from refract.gateway.base import ModelBackend, ModelReply
from refract.imaging.storage import store_image
from refract.imaging.uploads import sanitize_image
from refract.jobs.catalog import FINAL_FEATURE_STATUSES, FeatureStatus
from refract.jobs.progress import Event
from refract.jobs.readiness import claim_is_stale, inputs_final
from refract.jobs.state import change_job, feature_event
from tasks.services import WorkerServices, get_services

log = structlog.get_logger(__name__)


class _Skip(Exception):
    """The claim found nothing to do; the transaction is rolled back."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


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

    @property
    def backend(self) -> ModelBackend:
        """The model backend of this worker."""
        return self.services.backend

    def session(self) -> AbstractContextManager[Session]:
        """A short session for reading inputs (commits on exit)."""
        return self.services.session()

    def report(self, progress: float, step: str) -> None:
        """Publish progress (0..1) with a step name, if this run still owns the feature."""

        def mutate(job: Job, runs: dict[str, FeatureRun]) -> list[Event]:
            run = runs[self.feature]
            if run.status != FeatureStatus.RUNNING.value or run.task_id != self.task_id:
                raise _Skip("no longer owned")
            run.progress = max(run.progress, min(progress, 0.99))
            return [feature_event(str(job.id), run, step=step)]

        try:
            with self.services.session() as session:
                change_job(session, self.services.bus, self.job_id, mutate)
        except (_Skip, NotFound):  # the run lost its claim, or the job is gone
            pass
        self.log.info("feature_progress", progress=progress, step=step)


Work = Callable[[FeatureContext], ModelReply]


def _claim(
    session: Session, services: WorkerServices, job_id: uuid.UUID, feature: str, task_id: str
) -> Job:
    stale_after = timedelta(seconds=services.settings.claim_stale_after_s)

    def mutate(job: Job, runs: dict[str, FeatureRun]) -> list[Event]:
        run = runs.get(feature)
        if run is None:
            raise _Skip("feature not part of this job")
        if run.status in FINAL_FEATURE_STATUSES:
            raise _Skip(f"already {run.status}")
        if not inputs_final(feature, runs):
            raise _Skip("inputs not final yet")
        if (
            run.status == FeatureStatus.RUNNING.value
            and run.task_id != task_id
            and not claim_is_stale(run, utcnow(), stale_after)
        ):
            raise _Skip("running in another task")
        run.status = FeatureStatus.RUNNING.value
        run.attempts += 1
        run.task_id = task_id
        run.started_at = utcnow()
        run.finished_at = None
        run.progress = 0.05
        run.error_code = run.error_message = None
        return [feature_event(str(job.id), run, step="started")]

    return change_job(session, services.bus, job_id, mutate)


def upsert_feature(
    session: Session, job_id: uuid.UUID, feature: str, values: dict[str, Any]
) -> None:
    """Write a feature's outcome as an upsert keyed by (job, feature)."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    row = {"job_id": job_id, "feature": feature, **values}
    statement = insert(FeatureRun).values(**row)
    statement = statement.on_conflict_do_update(
        index_elements=[FeatureRun.job_id, FeatureRun.feature], set_=values
    )
    session.execute(statement)


def _store_outcome(
    session: Session,
    services: WorkerServices,
    ctx: FeatureContext,
    reply: ModelReply | None,
    error: FeatureError | None,
) -> Job:
    values: dict[str, Any] = {"finished_at": utcnow(), "progress": 1.0, "updated_at": utcnow()}
    if reply is not None:
        values.update(
            status=FeatureStatus.SUCCEEDED.value,
            result=dict(reply.data),
            error_code=None,
            error_message=None,
            backend=reply.backend,
            model=reply.model,
            prompt_version=reply.prompt_version,
            input_tokens=reply.usage.input_tokens,
            output_tokens=reply.usage.output_tokens,
        )
    else:
        assert error is not None
        values.update(
            status=FeatureStatus(error.status).value,
            result=None,
            error_code=error.code,
            error_message=error.message[:2000],
            backend=services.backend.name,
            # A refused or unusable answer was still a billed call: keep what it cost.
            model=error.details.get("model"),
            input_tokens=error.details.get("input_tokens"),
            output_tokens=error.details.get("output_tokens"),
        )

    def mutate(job: Job, runs: dict[str, FeatureRun]) -> list[Event]:
        run = runs[ctx.feature]
        if run.status in FINAL_FEATURE_STATUSES or run.task_id != ctx.task_id:
            raise _Skip("outcome already recorded by another run")
        if reply is not None and reply.image is not None:
            # Stored only once the run is known to own the feature, so a dropped
            # duplicate leaves no file behind.
            values["result"] = _store_image_result(session, services, ctx, reply)
        upsert_feature(session, job.id, ctx.feature, values)
        session.refresh(run)
        return [feature_event(str(job.id), run, step="finished")]

    return change_job(session, services.bus, ctx.job_id, mutate)


def _store_image_result(
    session: Session, services: WorkerServices, ctx: FeatureContext, reply: ModelReply
) -> dict[str, Any]:
    assert reply.image is not None
    try:
        clean = sanitize_image(
            reply.image.data,
            field=ctx.feature,
            max_bytes=50 * 1024 * 1024,
            max_pixels=services.settings.max_image_pixels,
            # Whatever size the model chose is its answer; only uploads have a minimum.
            min_side=1,
        )
    except ProblemError as exc:
        raise FeatureError("invalid_model_output", f"the model's image is unusable: {exc}") from exc
    artifact = store_image(
        session,
        services.store,
        job_id=ctx.job_id,
        role=ctx.feature,
        data=clean.data,
        content_type=clean.mime_type,
        width=clean.width,
        height=clean.height,
    )
    session.flush()
    return ImageResult(
        artifact_id=str(artifact.id),
        content_type=clean.mime_type,
        width=clean.width,
        height=clean.height,
        note=reply.data.get("note"),
    ).model_dump()


def run_feature(task: Task[Any, Any], job_id: str, feature: str, work: Work) -> dict[str, Any]:
    """Claim, run and record ``feature`` of ``job_id`` for a Celery task."""
    task_id = task.request.id or f"local-{uuid.uuid4()}"
    return execute_feature(get_services(), job_id, feature, task_id, work)


def execute_feature(
    services: WorkerServices, job_id: str, feature: str, task_id: str, work: Work
) -> dict[str, Any]:
    """Claim, run and record ``feature`` of ``job_id`` as run ``task_id``.

    Returns a small summary: ``outcome`` is the feature's final status, or ``noop`` when
    this run found nothing to do (finished, not ready, owned by another live run).
    """
    key = uuid.UUID(job_id)
    bound = log.bind(job_id=job_id, feature=feature, task_id=task_id)
    try:
        with services.session() as session:
            job = _claim(session, services, key, feature, task_id)
            ctx = FeatureContext(
                job_id=key,
                feature=feature,
                task_id=task_id,
                kind=job.kind,
                language=job.language,
                input=dict(job.input or {}),
                services=services,
                log=bound,
            )
    except _Skip as skip:
        bound.info("feature_skipped_run", reason=skip.reason)
        return {"job_id": job_id, "feature": feature, "outcome": "noop", "reason": skip.reason}
    except NotFound:
        # The job was deleted after its message was sent: nothing to do.
        bound.warning("feature_job_missing")
        return {"job_id": job_id, "feature": feature, "outcome": "noop", "reason": "no such job"}

    bound.info("feature_started")
    reply: ModelReply | None = None
    error: FeatureError | None = None
    try:
        reply = work(ctx)
    except FeatureError as exc:
        error = exc
    except Exception as exc:  # a bug or an unexpected failure: recorded, never left running
        bound.exception("feature_crashed")
        error = FeatureError("internal_error", f"{type(exc).__name__}: {exc}")

    try:
        with services.session() as session:
            job = _store_outcome(session, services, ctx, reply, error)
    except _Skip as skip:
        bound.info("feature_outcome_dropped", reason=skip.reason)
        return {"job_id": job_id, "feature": feature, "outcome": "noop", "reason": skip.reason}
    except FeatureError as exc:  # the model's image failed our checks
        with services.session() as session:
            job = _store_outcome(session, services, ctx, None, exc)
        error = exc
    outcome = error.status if error else FeatureStatus.SUCCEEDED.value
    bound.info(
        "feature_finished",
        outcome=outcome,
        job_status=job.status,
        error_code=error.code if error else None,
    )
    return {"job_id": job_id, "feature": feature, "outcome": outcome}
