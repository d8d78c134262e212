"""Acting on a job: cancel it, retry one of its features (:mod:`refract.jobs.control`)."""

from __future__ import annotations

import structlog
from flask import Blueprint, Response

from api.db import get_db
from api.openapi import operations
from api.ownership import authorize_job
from api.principal import current_principal
from api.services import services
from api.views.jobs import resource_response
from refract.jobs.control import cancel_job, enqueue_retries, retry_feature
from refract.jobs.resource import job_resource
from refract.jobs.store import get_job

bp = Blueprint("control", __name__, url_prefix="/api/v1")
log = structlog.get_logger(__name__)


@bp.post("/jobs/<job_id>/cancel")
@operations.cancel_job
def cancel_job_view(job_id: str) -> Response:
    """Cancel a job.

    Features not finished yet become `canceled` at once (a running one stops at its next
    step and its late result is discarded); the job ends `canceled`, or `partial` when
    some features had already succeeded. Canceling a finished job changes nothing.
    """
    structlog.contextvars.bind_contextvars(job_id=job_id)
    key = authorize_job(job_id)
    svc = services()
    session = get_db()
    job = cancel_job(session, svc.bus, key)
    session.commit()
    return resource_response(job_resource(job), svc, status=202)


@bp.post("/jobs/<job_id>/features/<feature>/retry")
@operations.retry_feature
def retry_feature_view(job_id: str, feature: str) -> Response:
    """Retry a feature.

    The feature is queued again and the features that need it go back to `waiting`
    (retrying `stylize` makes a new `card`). An admin may retry any finished feature;
    the job's owner only a `failed` one.
    """
    structlog.contextvars.bind_contextvars(job_id=job_id, feature=feature)
    key = authorize_job(job_id)
    svc = services()
    session = get_db()
    send = retry_feature(session, svc.bus, key, feature, admin=current_principal().is_admin)
    session.commit()
    enqueue_retries(svc.celery, session, {key: send})
    return resource_response(job_resource(get_job(session, str(key))), svc, status=202)
