"""Jobs: create, read (ETag/304), list, and follow (Server-Sent Events)."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

import structlog
from flask import Blueprint, Response, json, request
from spectree import Response as Responses
from werkzeug.http import unquote_etag

from api.db import close_db, get_db
from api.events import EVENT_ID_RE, EVENTS_DESCRIPTION, open_stream
from api.intake import idempotency_key, read_submission
from api.openapi import documented
from api.schemas import (
    EventsQuery,
    FeatureEventData,
    IdempotencyHeaders,
    JobEventData,
    JobList,
    JobListQuery,
    JobResource,
    PhotoCardForm,
    Problem,
    VideoJobRequest,
)
from api.services import Services, services
from api.submission import submit
from api.validation import parse
from refract.core.errors import FieldError, NotFound, ValidationFailed
from refract.jobs.catalog import FINAL_JOB_STATUSES
from refract.jobs.resource import etag_for, job_resource
from refract.jobs.store import get_job, list_jobs

bp = Blueprint("jobs", __name__, url_prefix="/api/v1")

JOB_ID = {"job_id": "The job's id (a UUID)."}
_ETAG = {"ETag": {"description": "The job's version tag.", "schema": {"type": "string"}}}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before polling again; absent once the job is final.",
        "schema": {"type": "integer"},
    }
}
_LOCATION = {"Location": {"description": "The job's URL.", "schema": {"type": "string"}}}
IF_NONE_MATCH = {
    "name": "If-None-Match",
    "in": "header",
    "required": False,
    "description": "The ETag of the copy the client has; `304` if it is still current.",
    "schema": {"type": "string"},
}


@bp.post("/jobs")
@documented(
    operation_id="createJob",
    tags=["jobs"],
    json=VideoJobRequest,
    form=PhotoCardForm,
    headers=IdempotencyHeaders,
    resp=Responses(
        HTTP_202=(JobResource, "The job was created and its features enqueued."),
        HTTP_200=(JobResource, "The Idempotency-Key was used before: that same job."),
        HTTP_400=(Problem, "The body is not parsable (malformed JSON or multipart)."),
        HTTP_409=(Problem, "The Idempotency-Key was used with a different body."),
        HTTP_413=(Problem, "The body or the photo is too large."),
        HTTP_415=(
            Problem,
            "Not JSON nor multipart, a wrong body type for the kind, "
            "or a photo that is not a JPEG, PNG or WebP image.",
        ),
    ),
    extra={
        "responses": {
            "202": {"headers": {**_LOCATION, **_ETAG}},
            "200": {"headers": {**_LOCATION, **_ETAG}},
        },
        "requestBody": {
            "description": "A video job as JSON, or a photo card as multipart/form-data.",
            "content": {
                "multipart/form-data": {
                    "encoding": {"photo": {"contentType": "image/jpeg, image/png, image/webp"}}
                }
            },
        },
    },
)
def create_job() -> Response:
    """Create a job.

    A video analysis (`application/json`) or a photo card (`multipart/form-data`). Its
    features are enqueued as soon as the job is stored.
    """
    svc = services()
    key = idempotency_key(request)
    submission = read_submission(request, svc.settings)
    outcome = submit(get_db(), svc, submission, key)
    resource = job_resource(outcome.job)
    response = _resource_response(resource, svc, status=202 if outcome.created else 200)
    response.headers["Location"] = resource["links"]["self"]
    return response


@bp.get("/jobs/<job_id>")
@documented(
    operation_id="getJob",
    tags=["jobs"],
    path_parameters=JOB_ID,
    resp=Responses(
        "HTTP_304",
        HTTP_200=(JobResource, "The job."),
        HTTP_404=(Problem, "No such job."),
    ),
    extra={
        "parameters": [IF_NONE_MATCH],
        "responses": {
            "200": {"headers": {**_ETAG, **_RETRY_AFTER}},
            "304": {
                "description": "Not modified since the ETag given in If-None-Match.",
                "headers": {**_ETAG, **_RETRY_AFTER},
            },
        },
    },
)
def get_job_view(job_id: str) -> Response:
    """Get a job.

    Answered from the live Redis snapshot when there is one, else from the database.
    Send the last `ETag` as `If-None-Match` to get a `304` while nothing changed.
    """
    structlog.contextvars.bind_contextvars(job_id=job_id)
    svc = services()
    resource = current_resource(svc, job_id)
    etag = etag_for(resource["id"], resource["version"])
    if request.if_none_match.contains_weak(unquote_etag(etag)[0] or ""):
        not_modified = Response(status=304)
        _cache_headers(not_modified, resource, svc)
        return not_modified
    return _resource_response(resource, svc)


@bp.get("/jobs")
@documented(
    operation_id="listJobs",
    tags=["jobs"],
    query=JobListQuery,
    resp=Responses(HTTP_200=(JobList, "A page of jobs, newest first.")),
    extra={
        "responses": {
            "200": {
                "headers": {
                    "Link": {
                        "description": 'The next page, as `<url>; rel="next"`.',
                        "schema": {"type": "string"},
                    }
                }
            }
        }
    },
)
def list_jobs_view() -> Response:
    """List jobs, newest first.

    Filter by `status` and `kind`; follow `next_cursor` (or the `Link` header) for the
    next page.
    """
    query = parse(JobListQuery, request.args.to_dict(), what="query")
    try:
        jobs, next_cursor = list_jobs(
            get_db(),
            limit=query.limit,
            status=query.status.value if query.status else None,
            kind=query.kind.value if query.kind else None,
            cursor=query.cursor,
        )
    except ValidationFailed as exc:
        raise ValidationFailed(exc.detail, errors=[FieldError("cursor", exc.detail)]) from exc
    body = {"items": [job_resource(job) for job in jobs], "next_cursor": next_cursor}
    response = _json(body)
    if next_cursor is not None:
        params: dict[str, Any] = {"limit": query.limit, "cursor": next_cursor}
        if query.status:
            params["status"] = query.status.value
        if query.kind:
            params["kind"] = query.kind.value
        response.headers["Link"] = f'<{request.path}?{urlencode(params)}>; rel="next"'
    return response


@bp.get("/jobs/<job_id>/events")
@documented(
    operation_id="streamJobEvents",
    tags=["jobs"],
    query=EventsQuery,
    path_parameters=JOB_ID,
    resp=Responses(
        "HTTP_204",
        HTTP_404=(Problem, "No such job."),
    ),
    extra={
        "description": EVENTS_DESCRIPTION,
        "parameters": [
            {
                "name": "Last-Event-ID",
                "in": "header",
                "required": False,
                "description": "Resume after this event id (sent by EventSource itself).",
                "schema": {"type": "string"},
            }
        ],
        "responses": {
            "200": {
                "description": "A Server-Sent Events stream of `feature` and `job` events.",
                "content": {
                    "text/event-stream": {
                        "schema": {"type": "string"},
                        "example": (
                            'id: 1732701600000-0\nevent: feature\ndata: {"job_id": "…", '
                            '"feature": "summary", "status": "running", "progress": 0.0}\n\n'
                        ),
                    }
                },
            },
            "204": {
                "description": (
                    "The job is finished and its final event was already delivered: "
                    "EventSource stops reconnecting."
                )
            },
        },
    },
    extra_models=(FeatureEventData, JobEventData),
)
def stream_events(job_id: str) -> Response:
    """Follow a job's progress (Server-Sent Events)."""
    structlog.contextvars.bind_contextvars(job_id=job_id)
    svc = services()
    after = _last_event_id()
    frames = open_stream(
        get_db(),
        svc.bus,
        job_id,
        after,
        block_ms=svc.sse_block_ms,
        max_duration_s=svc.settings.sse_max_duration_s,
    )
    # The stream may last minutes: give the connection back to the pool first.
    close_db()
    if frames is None:
        return Response(status=204)
    response = Response(frames, mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    return response


def current_resource(svc: Services, raw_id: str) -> dict[str, Any]:
    """The job resource: the Redis snapshot if present, else built from the database."""
    try:
        job_id = str(uuid.UUID(raw_id))
    except ValueError as exc:
        raise NotFound(f"job {raw_id} does not exist") from exc
    found = svc.bus.snapshot(job_id)
    if found is not None:
        return found[1]
    job = get_job(get_db(), job_id)
    resource = job_resource(job)
    # Refill the snapshot (Redis was flushed or the key expired); an older version never
    # replaces a newer one, so a concurrent worker update wins.
    svc.bus.publish(job_id, job.version, resource, [])
    return resource


def _last_event_id() -> str:
    """Where to resume: ``Last-Event-ID`` header, else ``last_event_id``, else the start."""
    header = request.headers.get("Last-Event-ID")
    if header is not None:
        return _checked_event_id(header.strip(), "Last-Event-ID")
    query = parse(EventsQuery, request.args.to_dict(), what="query")
    if query.last_event_id is None:
        return "0"
    return _checked_event_id(query.last_event_id, "last_event_id")


def _checked_event_id(value: str, field: str) -> str:
    if not EVENT_ID_RE.fullmatch(value):
        raise ValidationFailed(
            f"{field} is not an event id",
            errors=[FieldError(field, "must be an event id such as 1732701600000-0")],
        )
    return value


def _resource_response(resource: dict[str, Any], svc: Services, status: int = 200) -> Response:
    response = _json(resource, status)
    _cache_headers(response, resource, svc)
    return response


def _cache_headers(response: Response, resource: dict[str, Any], svc: Services) -> None:
    response.headers["ETag"] = etag_for(resource["id"], resource["version"])
    response.headers["Cache-Control"] = "no-cache"
    if resource["status"] not in FINAL_JOB_STATUSES:
        response.headers["Retry-After"] = str(svc.settings.poll_after_s)


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")
