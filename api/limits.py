"""Limits at the front door: per-key request rates, admission control, daily caps.

- **Rates** (:func:`limit_rate`, a ``before_request`` hook after authentication): every
  call under ``/api/v1`` that needs a key is counted in Redis per key — submissions
  (``POST /api/v1/jobs``) apart from reads — against ``submit_rate`` (or the key's own
  ``--rate``) and ``read_rate``. Over the limit: 429 with ``Retry-After``. Every counted
  answer carries the IETF httpapi draft's ``RateLimit-Policy`` and ``RateLimit`` fields.
  With auth off (a loopback development or demo stack) there are no keys and nothing is
  counted. If Redis cannot be reached the request goes through (logged): a limiter
  outage must not take the booth down.
- **Admission** (:func:`admit_new_job`, called just before a job is created — never for
  an idempotent replay): intake paused, or a backlog past its limits, is 503 with a
  ``Retry-After`` from the current drain rate; then the key's daily cap, 429 until
  midnight UTC. Only a job actually created (202) keeps its count for the day.
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta

import redis
import structlog
from flask import Flask, Response, current_app, g, request

from api.auth import PUBLIC_BLUEPRINTS, PUBLIC_ENDPOINTS
from api.db import get_db
from api.principal import Principal, current_principal
from api.services import services
from refract.access.ratelimit import Decision, RateLimiter
from refract.access.rates import Rate, parse_rate
from refract.core.errors import Overloaded, TooManyRequests
from refract.jobs.admission import BacklogGauge, intake_paused, overloaded
from refract.jobs.progress import SNAPSHOT_FIELDS, ProgressBus, RawSnapshot

log = structlog.get_logger(__name__)

SUBMIT_ENDPOINT = "jobs.create_job"
READ_ENDPOINT = "jobs.get_job_view"


def init_app(app: Flask) -> None:
    """Count requests (after authentication) and label limited answers."""
    svc = app.extensions["refract"]
    app.extensions["refract.limits"] = RateLimiter(svc.bus.client)
    app.extensions["refract.backlog"] = BacklogGauge()
    app.before_request(limit_rate)
    app.after_request(_rate_headers)
    app.after_request(_refund_uncreated)


def limit_rate() -> None:
    """Count this request against its key's rate; 429 past it."""
    if request.endpoint is None or _uncounted():
        return
    principal = current_principal()
    if principal.key_id is None:  # auth off: no keys to count against
        return
    policy, rate = _policy(principal)
    who = str(principal.key_id)
    limiter: RateLimiter = current_app.extensions["refract.limits"]
    job_id = _read_job_id()
    try:
        if job_id is None:
            decision = limiter.hit(policy, who, rate)
        else:
            # A job read: count it and read the job's snapshot in one round trip; the
            # view answers from it once the caller may see the job (api/views/jobs.py).
            decision, values = limiter.hit_and_read(
                policy, who, rate, ProgressBus.snapshot_key(job_id), SNAPSHOT_FIELDS
            )
            g.prefetched_snapshot = (job_id, ProgressBus.raw_snapshot_from(values))
    except redis.RedisError as exc:
        log.warning("rate_limit_unchecked", error=type(exc).__name__)
        return
    g.rate_limit = (policy, decision)
    if not decision.allowed:
        raise TooManyRequests(
            f"too many {'submissions' if policy == 'submit' else 'requests'} for this key "
            f"({rate}); try again in {decision.retry_after_s}s",
            retry_after=decision.retry_after_s,
            headers=_fields(policy, decision),
        )


def _read_job_id() -> str | None:
    """The job id of a ``GET /api/v1/jobs/<id>`` (canonical), else ``None``."""
    if request.endpoint != READ_ENDPOINT or request.method != "GET":
        return None
    raw = (request.view_args or {}).get("job_id")
    try:
        return str(uuid.UUID(raw)) if isinstance(raw, str) else None
    except ValueError:  # the view answers 404 for it
        return None


def prefetched_snapshot(job_id: str) -> tuple[bool, RawSnapshot | None]:
    """``(read, snapshot)``: the snapshot of ``job_id`` read with this request's rate
    count, if it was (``read`` is False when it was not: Redis failed, another job)."""
    found = g.pop("prefetched_snapshot", None)
    if found is None or found[0] != job_id:
        return False, None
    return True, found[1]


def _uncounted() -> bool:
    return request.blueprint in PUBLIC_BLUEPRINTS or request.endpoint in PUBLIC_ENDPOINTS


def _policy(principal: Principal) -> tuple[str, Rate]:
    settings = services().settings
    if request.endpoint == SUBMIT_ENDPOINT and request.method == "POST":
        return "submit", parse_rate(principal.rate or settings.submit_rate)
    return "read", parse_rate(settings.read_rate)


def _fields(policy: str, decision: Decision) -> dict[str, str]:
    return {
        "RateLimit-Policy": f'"{policy}";q={decision.limit};w={decision.window_s}',
        "RateLimit": f'"{policy}";r={decision.remaining};t={decision.reset_s}',
    }


def _rate_headers(response: Response) -> Response:
    counted = g.get("rate_limit")
    if counted is not None:
        for name, value in _fields(*counted).items():
            response.headers.setdefault(name, value)
    return response


def admit_new_job(principal: Principal) -> None:
    """Raise unless a new job may be created now: intake open, the backlog within its
    limits (503 ``Overloaded``), and the key under its daily cap (429)."""
    svc = services()
    paused = intake_paused(svc.bus.client)
    if paused is not None:
        raise Overloaded("intake is paused by the operators; try again shortly", retry_after=30)
    gauge: BacklogGauge = current_app.extensions["refract.backlog"]
    backlog = gauge.read(get_db())
    reason = overloaded(backlog, svc.settings.max_backlog, svc.settings.max_queue_wait_s)
    if reason is not None:
        log.warning("intake_overloaded", reason=reason, waiting=backlog.waiting)
        raise Overloaded(
            f"too many jobs are waiting ({reason}); try again later",
            retry_after=backlog.retry_after_s(),
        )
    if principal.max_jobs_per_day is not None and principal.key_id is not None:
        _count_today(svc.bus.client, str(principal.key_id), principal.max_jobs_per_day)


def _count_today(client: redis.Redis[str], key_id: str, cap: int) -> None:
    """Count one job against today's cap (UTC days); 429 past it, until midnight."""
    now = datetime.now(UTC)
    key = f"refract:daily:{key_id}:{now:%Y%m%d}"
    try:
        with client.pipeline() as pipe:
            count, _ = pipe.incr(key).expire(key, 2 * 86400).execute()
    except redis.RedisError as exc:
        log.warning("daily_cap_unchecked", error=type(exc).__name__)
        return
    # Given back after the answer unless a job was created (202): refused, replayed, failed.
    g.daily_counted = key
    if int(count) > cap:
        midnight = datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)
        raise TooManyRequests(
            f"this key's cap of {cap} jobs a day is reached; it resets at midnight UTC",
            retry_after=max(1, math.ceil((midnight - now).total_seconds())),
        )


def _refund_uncreated(response: Response) -> Response:
    """Give back the day's count of a submission that created no job after all: over
    the cap, a concurrent replay of its Idempotency-Key (200), a failure while creating."""
    key = g.get("daily_counted")
    if key is not None and response.status_code != 202:
        _refund(services().bus.client, key)
    return response


def _refund(client: redis.Redis[str], key: str) -> None:
    try:
        client.decr(key)
    except redis.RedisError as exc:  # the count stays one high until midnight: harmless
        log.warning("daily_cap_refund_failed", error=type(exc).__name__)
