"""Storing a feature's outcome: once, by the run that owns the feature, whatever the
database does meanwhile.

The outcome is written to the feature's row, keyed by (job, feature), under the job's
row lock, only while the run still owns the feature. A model's answer has been paid
for, so a database error on the way (a restart, a dropped connection) is retried with
backoff for up to ``store_retry_s`` before the run gives up; an image written for an
attempt whose transaction failed is removed, so nothing is left behind.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import structlog
from sqlalchemy.orm import Session

from refract.core.db import database_unavailable
from refract.core.errors import FeatureError, ProblemError
from refract.core.models import FeatureRun, Job, utcnow
from refract.core.results import ImageResult
from refract.gateway.base import ModelReply
from refract.imaging.storage import store_image
from refract.imaging.uploads import sanitize_image
from refract.jobs.catalog import FINAL_FEATURE_STATUSES, FeatureStatus
from refract.jobs.progress import Event
from refract.jobs.state import change_job, feature_event
from tasks.claims import Skip
from tasks.services import WorkerServices

log = structlog.get_logger(__name__)

T = TypeVar("T")

# Backoff between attempts to reach the database: doubling from this, capped at the max.
RETRY_BASE_S = 0.25
RETRY_MAX_S = 5.0


def with_database_retries(
    fn: Callable[[], T],
    *,
    budget_s: float,
    what: str,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Call ``fn`` until it gets through the database, for up to ``budget_s`` seconds.

    Only errors meaning the database could not be reached are retried (see
    :func:`refract.core.db.database_unavailable`); anything else, and the last
    unavailability once the budget is spent, propagates.
    """
    ends_at = clock() + budget_s
    attempt = 0
    while True:
        try:
            return fn()
        except Exception as exc:
            if not database_unavailable(exc):
                raise
            attempt += 1
            delay = random.uniform(0, min(RETRY_MAX_S, RETRY_BASE_S * 2 ** (attempt - 1)))
            left = ends_at - clock()
            if left <= delay:
                raise
            log.warning("database_retry", what=what, attempt=attempt, delay_s=round(delay, 2))
            sleep(delay)


def outcome_values(
    services: WorkerServices, reply: ModelReply | None, error: FeatureError | None
) -> dict[str, Any]:
    """The feature row's columns for a reply (succeeded) or an error (failed, blocked...)."""
    now = utcnow()
    values: dict[str, Any] = {"finished_at": now, "progress": 1.0, "updated_at": now}
    if reply is not None:
        values.update(
            status=FeatureStatus.SUCCEEDED.value,
            result=dict(reply.data),
            error_code=None,
            error_message=None,
            error_ref=None,
            backend=reply.backend,
            model=reply.model,
            prompt_version=reply.prompt_version,
            input_tokens=reply.usage.input_tokens,
            output_tokens=reply.usage.output_tokens,
        )
        return values
    assert error is not None
    values.update(
        status=FeatureStatus(error.status).value,
        result=None,
        error_code=error.code,
        error_message=error.message[:2000],
        error_ref=error.reference,
        backend=services.backend.name,
        # A refused or unusable answer was still a billed call: keep what it cost.
        model=error.details.get("model"),
        input_tokens=error.details.get("input_tokens"),
        output_tokens=error.details.get("output_tokens"),
    )
    return values


def store_outcome(
    services: WorkerServices,
    job_id: uuid.UUID,
    feature: str,
    task_id: str,
    reply: ModelReply | None,
    error: FeatureError | None,
    step: tuple[float, str] | None = None,
) -> Job:
    """Record the outcome in its own transaction; ``Skip`` if another run owns the feature.

    ``step``: a progress report (progress, step) the run made that was not written yet;
    its event is published just before the outcome's.

    Raises ``FeatureError`` when the model's image fails our checks (the caller stores
    that error instead), and the database's error when it stays unreachable.
    """
    values = outcome_values(services, reply, error)
    written: list[str] = []

    def mutate(job: Job, runs: dict[str, FeatureRun]) -> list[Event]:
        run = runs[feature]
        if run.status == FeatureStatus.CANCELED.value:
            # Canceled while it worked: the late answer is discarded, its image never kept.
            raise Skip("the feature was canceled")
        if run.status in FINAL_FEATURE_STATUSES or run.task_id != task_id:
            raise Skip("outcome already recorded by another run")
        if reply is not None and reply.image is not None:
            # Stored only once the run is known to own the feature, so a dropped
            # duplicate leaves no file behind.
            image = _store_image_result(session, services, job_id, feature, reply, written)
            values["result"] = image
        events = []
        if step is not None:
            progress, name = step
            progress = round(max(run.progress, min(progress, 0.99)), 3)
            events.append(feature_event(str(job.id), run, step=name, progress=progress))
        for column, value in values.items():
            setattr(run, column, value)
        return [*events, feature_event(str(job.id), run, step="finished")]

    try:
        with services.session() as session:
            return change_job(session, services.bus, job_id, mutate)
    except BaseException:
        for key in written:  # the transaction did not commit: its image must not stay
            services.store.delete(key)
        raise


def _store_image_result(
    session: Session,
    services: WorkerServices,
    job_id: uuid.UUID,
    feature: str,
    reply: ModelReply,
    written: list[str],
) -> dict[str, Any]:
    assert reply.image is not None
    try:
        clean = sanitize_image(
            reply.image.data,
            field=feature,
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
        job_id=job_id,
        role=feature,
        data=clean.data,
        content_type=clean.mime_type,
        width=clean.width,
        height=clean.height,
    )
    written.append(artifact.storage_key)
    session.flush()
    image = ImageResult(
        artifact_id=str(artifact.id),
        content_type=clean.mime_type,
        width=clean.width,
        height=clean.height,
        note=reply.data.get("note"),
    ).model_dump()
    # What the backend and the task said beside the image (which subject was restyled,
    # the card's design, the language) is kept; the stored image's own fields win.
    return {**{k: v for k, v in reply.data.items() if k not in image}, **image}
