"""Jobs: create, read (ETag/304), list, follow (Server-Sent Events), and delete."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import structlog
from flask import Blueprint, Response, json, request
from werkzeug.http import unquote_etag

from api.db import close_db, get_db
from api.events import EVENT_ID_RE, open_stream
from api.intake import idempotency_key, read_submission
from api.limits import admit_new_job, prefetched_snapshot
from api.openapi import operations
from api.ownership import authorize_job, listing_owner, owner_cache
from api.principal import current_principal
from api.schemas import EventsQuery, JobListQuery
from api.services import Services, services
from api.submission import submit
from api.validation import parse
from refract.core.errors import FieldError, ValidationFailed
from refract.core.ids import parse_id
from refract.jobs.catalog import FINAL_JOB_STATUSES
from refract.jobs.erasure import erase_job
from refract.jobs.progress import RawSnapshot
from refract.jobs.resource import etag_for, job_resource
from refract.jobs.store import get_job, list_jobs

bp = Blueprint("jobs", __name__, url_prefix="/api/v1")
log = structlog.get_logger(__name__)


@bp.post("/jobs")
@operations.create_job
def create_job() -> Response:
    """Create a job.

    A video analysis (`application/json`) or a photo card (`multipart/form-data`). Its
    features are enqueued as soon as the job is stored.
    """
    svc = services()
    principal = current_principal()
    key = idempotency_key(request)
    submission = read_submission(
        request, svc.settings, principal.key_id, fingerprint=key is not None
    )
    outcome = submit(get_db(), svc, submission, key, admit=lambda: admit_new_job(principal))
    owner_cache().put(outcome.job.id, outcome.job.owner_key_id)
    resource = outcome.resource or job_resource(outcome.job)
    response = resource_response(resource, svc, status=202 if outcome.created else 200)
    response.headers["Location"] = resource["links"]["self"]
    return response


@bp.get("/jobs/<job_id>")
@operations.get_job
def get_job_view(job_id: str) -> Response:
    """Get a job.

    Answered from the live Redis snapshot when there is one, else from the database.
    Send the last `ETag` as `If-None-Match` to get a `304` while nothing changed.
    """
    structlog.contextvars.bind_contextvars(job_id=job_id)
    key = str(authorize_job(job_id))
    svc = services()
    read, raw = prefetched_snapshot(key)
    if not read:
        raw = svc.bus.raw_snapshot(key)
    if raw is None or raw.status is None:
        # No snapshot (Redis flushed, key expired, or one stored without its status):
        # build the resource and answer from it.
        resource = current_resource(svc, key, raw)
        etag = etag_for(key, resource["version"], svc.signer.epoch())
        if _client_has(etag):
            return _not_modified(etag, resource["status"], svc)
        return resource_response(resource, svc)
    # The fast path: the ETag from the stored version alone, the body as stored (only
    # its artifact paths signed); nothing parsed, nothing re-serialised.
    etag = etag_for(key, raw.version, svc.signer.epoch())
    if _client_has(etag):
        return _not_modified(etag, raw.status, svc)
    response = Response(svc.signer.sign_json(raw.body), status=200, mimetype="application/json")
    _set_cache_headers(response, etag, raw.status, svc)
    return response


@bp.get("/jobs")
@operations.list_jobs
def list_jobs_view() -> Response:
    """List jobs, newest first.

    Filter by `status` and `kind` (and, with an admin key, `key`); follow `next_cursor`
    (or the `Link` header) for the next page. A client key lists only its own jobs.
    """
    query = parse(JobListQuery, request.args.to_dict(), what="query")
    owner = listing_owner(query.key)
    try:
        jobs, next_cursor = list_jobs(
            get_db(),
            limit=query.limit,
            status=query.status.value if query.status else None,
            kind=query.kind.value if query.kind else None,
            cursor=query.cursor,
            owner=owner,
        )
    except ValidationFailed as exc:
        raise ValidationFailed(exc.detail, errors=[FieldError("cursor", exc.detail)]) from exc
    svc = services()
    items = [svc.signer.sign_urls(job_resource(job)) for job in jobs]
    body = {"items": items, "next_cursor": next_cursor}
    response = _json(body)
    if next_cursor is not None:
        params: dict[str, Any] = {"limit": query.limit, "cursor": next_cursor}
        if query.status:
            params["status"] = query.status.value
        if query.kind:
            params["kind"] = query.kind.value
        if query.key:
            params["key"] = query.key
        response.headers["Link"] = f'<{request.path}?{urlencode(params)}>; rel="next"'
    return response


@bp.delete("/jobs/<job_id>")
@operations.delete_job
def delete_job_view(job_id: str) -> Response:
    """Delete a job: its inputs, results, and every image it stored.

    Only its owner (or an admin) may; afterwards the job is 404 and its image URLs are
    dead. Features still running stop mattering: their results are dropped.
    """
    structlog.contextvars.bind_contextvars(job_id=job_id)
    key = authorize_job(job_id)
    svc = services()
    session = get_db()
    remove_files = erase_job(session, svc.store.delete, key)
    session.commit()
    remove_files()
    owner_cache().forget(key)
    svc.bus.forget(str(key))
    log.info("job_deleted")
    return Response(status=204)


@bp.get("/jobs/<job_id>/events")
@operations.stream_job_events
def stream_events(job_id: str) -> Response:
    """Follow a job's progress (Server-Sent Events)."""
    structlog.contextvars.bind_contextvars(job_id=job_id)
    authorize_job(job_id)
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


def current_resource(svc: Services, raw_id: str, raw: RawSnapshot | None = None) -> dict[str, Any]:
    """The job resource: the Redis snapshot if present (``raw``, when already read),
    else built from the database."""
    job_id = str(parse_id(raw_id, "job"))
    if raw is None:
        raw = svc.bus.raw_snapshot(job_id)
    if raw is not None:
        found: dict[str, Any] = json.loads(raw.body)
        return found
    job = get_job(get_db(), job_id)
    resource = job_resource(job)
    # Refill the snapshot (Redis was flushed or the key expired); an older version never
    # replaces a newer one, so a concurrent worker update wins.
    svc.bus.publish(job_id, job.version, resource, [])
    return resource


def _last_event_id() -> str:
    """Where to resume: ``Last-Event-ID`` header, else ``last_event_id``, else the start."""
    # Empty means "from the start", as for an EventSource that has seen no event yet.
    header = (request.headers.get("Last-Event-ID") or "").strip()
    if header:
        return _checked_event_id(header, "Last-Event-ID")
    query = parse(EventsQuery, request.args.to_dict(), what="query")
    if not query.last_event_id:
        return "0"
    return _checked_event_id(query.last_event_id, "last_event_id")


def _checked_event_id(value: str, field: str) -> str:
    if not EVENT_ID_RE.fullmatch(value):
        raise ValidationFailed(
            f"{field} is not an event id",
            errors=[FieldError(field, "must be an event id such as 1732701600000-0")],
        )
    return value


def resource_response(resource: dict[str, Any], svc: Services, status: int = 200) -> Response:
    """The job resource as an answer: signed image URLs, ETag, cache headers."""
    # Image URLs are signed as they leave: what is stored and published has paths only.
    response = _json(svc.signer.sign_urls(resource), status)
    _cache_headers(response, resource, svc)
    return response


def _cache_headers(response: Response, resource: dict[str, Any], svc: Services) -> None:
    etag = etag_for(resource["id"], resource["version"], svc.signer.epoch())
    _set_cache_headers(response, etag, resource["status"], svc)


def _set_cache_headers(response: Response, etag: str, status: str, svc: Services) -> None:
    response.headers["ETag"] = etag
    response.headers["Cache-Control"] = "no-cache"
    if status not in FINAL_JOB_STATUSES:
        response.headers["Retry-After"] = str(svc.settings.poll_after_s)


def _client_has(etag: str) -> bool:
    """Whether the request's ``If-None-Match`` names ``etag`` (weak comparison)."""
    if "If-None-Match" not in request.headers:
        return False  # the common first read: nothing to parse
    return request.if_none_match.contains_weak(unquote_etag(etag)[0] or "")


def _not_modified(etag: str, status: str, svc: Services) -> Response:
    """A ``304``: the cache headers a ``200`` would carry, no body, nothing rendered."""
    response = Response(status=304)
    _set_cache_headers(response, etag, status, svc)
    return response


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")
