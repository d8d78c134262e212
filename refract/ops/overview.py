"""The dashboard's overview: what is running, what failed, how fast, at what cost.

:func:`build_overview` gathers one consistent picture from Postgres (jobs, feature runs,
tokens), the broker (queue depths), and Redis (workers online, model calls, the limiter's
window, the intake flag). Each source that cannot be read is reported as unknown rather
than failing the whole page: during an outage the dashboard is what staff look at.
"""

from __future__ import annotations

import math
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import redis
import structlog
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from refract.core.models import FeatureRun, Job, utcnow
from refract.core.settings import Settings
from refract.jobs.admission import intake_paused, measure, overloaded
from refract.jobs.catalog import ALL_QUEUES, FEATURES, FeatureStatus
from refract.jobs.queues import queue_depths
from refract.observability.usage import read_usage
from refract.ops.presence import workers_online
from refract.ops.pricing import PriceTable

log = structlog.get_logger(__name__)

WINDOW = timedelta(minutes=15)
HOUR = timedelta(hours=1)
# Durations are taken from at most this many recent runs per overview.
DURATION_SAMPLE = 20_000
IN_FLIGHT = (FeatureStatus.WAITING, FeatureStatus.QUEUED, FeatureStatus.RUNNING)
RAN = (FeatureStatus.SUCCEEDED.value, FeatureStatus.FAILED.value)
FAILED = (FeatureStatus.FAILED.value, FeatureStatus.BLOCKED.value)


@dataclass(frozen=True)
class Sources:
    """Where the overview reads from besides the database."""

    progress: redis.Redis[str]  # progress, limits, presence, usage counts
    broker: redis.Redis[bytes] | None  # None when the broker is not Redis
    settings: Settings


def percentile(sorted_values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of already sorted values (0.0 for none)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def jobs_per_minute(session: Session, now: datetime) -> list[dict[str, Any]]:
    """Jobs created in each of the last 15 minutes, oldest first (the current one last)."""
    start = now.replace(second=0, microsecond=0) - WINDOW + timedelta(minutes=1)
    created = session.scalars(select(Job.created_at).where(Job.created_at >= start))
    counts = Counter(int((at - start).total_seconds() // 60) for at in created)
    minutes = int(WINDOW.total_seconds() // 60)
    return [
        {"minute": (start + timedelta(minutes=i)).isoformat(), "count": counts.get(i, 0)}
        for i in range(minutes)
    ]


def jobs_by_status(session: Session) -> dict[str, int]:
    """How many jobs are in each status, over the whole event."""
    rows = session.execute(select(Job.status, func.count()).group_by(Job.status))
    return {status: int(count) for status, count in rows}


def features_in_flight(session: Session) -> dict[str, dict[str, int]]:
    """Per feature: how many runs wait for inputs, wait in a queue, and run now."""
    found: dict[str, dict[str, int]] = {name: {s.value: 0 for s in IN_FLIGHT} for name in FEATURES}
    rows = session.execute(
        select(FeatureRun.feature, FeatureRun.status, func.count())
        .where(FeatureRun.status.in_([s.value for s in IN_FLIGHT]))
        .group_by(FeatureRun.feature, FeatureRun.status)
    )
    for feature, status, count in rows:
        found.setdefault(feature, {})[status] = int(count)
    return found


def durations(session: Session, since: datetime) -> dict[str, dict[str, float]]:
    """Per feature, the p50 and p95 of run time (claim to outcome) of runs ended since."""
    rows = session.execute(
        select(FeatureRun.feature, FeatureRun.started_at, FeatureRun.finished_at)
        .where(
            FeatureRun.finished_at >= since,
            FeatureRun.started_at.is_not(None),
            FeatureRun.status.in_(RAN),
        )
        .order_by(FeatureRun.finished_at.desc())
        .limit(DURATION_SAMPLE)
    )
    by_feature: defaultdict[str, list[float]] = defaultdict(list)
    for feature, started, finished in rows:
        if started is None or finished is None:
            continue
        by_feature[feature].append(max(0.0, (finished - started).total_seconds()))
    result = {}
    for feature, values in by_feature.items():
        values.sort()
        result[feature] = {
            "count": len(values),
            "p50_s": round(percentile(values, 0.50), 3),
            "p95_s": round(percentile(values, 0.95), 3),
        }
    return result


def failures_by_code(session: Session, since: datetime | None) -> dict[str, int]:
    """Failed or blocked features per error code, since ``since`` (None: ever)."""
    query = select(FeatureRun.error_code, func.count()).where(FeatureRun.status.in_(FAILED))
    if since is not None:
        query = query.where(FeatureRun.finished_at >= since)
    rows = session.execute(query.group_by(FeatureRun.error_code))
    return {code or "unknown": int(count) for code, count in rows}


def token_cost(session: Session, prices: PriceTable, since: datetime | None) -> dict[str, Any]:
    """Tokens per model and the estimated dollars, for runs ended since ``since``."""
    query = select(
        FeatureRun.model,
        func.coalesce(func.sum(FeatureRun.input_tokens), 0),
        func.coalesce(func.sum(FeatureRun.output_tokens), 0),
    ).where(FeatureRun.model.is_not(None))
    if since is not None:
        query = query.where(FeatureRun.finished_at >= since)
    models: dict[str, dict[str, Any]] = {}
    total = 0.0
    for model, tokens_in, tokens_out in session.execute(query.group_by(FeatureRun.model)):
        spent_in, spent_out = int(tokens_in or 0), int(tokens_out or 0)
        cost = prices.cost(model, spent_in, spent_out)
        total += cost
        models[str(model)] = {
            "input_tokens": spent_in,
            "output_tokens": spent_out,
            "cost_usd": round(cost, 6),
            "priced": prices.knows(model),
        }
    return {"models": models, "cost_usd": round(total, 6)}


def quota_in_use(
    client: redis.Redis[str], models: list[str], rpm: int, now: float
) -> dict[str, Any]:
    """Calls each model's shared limiter admitted in the last minute, against the limit."""
    pipe = client.pipeline(transaction=False)
    for model in models:
        pipe.zcount(f"refract:ratelimit:{model}", (now - 60) * 1000, "+inf")
    counts = pipe.execute()
    return {
        "limit_rpm": rpm or None,
        "models": {model: int(n) for model, n in zip(models, counts, strict=True)},
    }


def build_overview(
    session: Session, sources: Sources, now: datetime | None = None
) -> dict[str, Any]:
    """Everything the overview page shows, as JSON-ready values."""
    now = now or utcnow()
    settings = sources.settings
    prices = PriceTable(settings.prices_usd_per_mtok)
    since = now - WINDOW
    event = token_cost(session, prices, None)
    finished_jobs = session.scalar(select(func.count()).where(Job.finished_at.is_not(None))) or 0
    backlog = measure(session, now)
    overview: dict[str, Any] = {
        "generated_at": now.isoformat(),
        "window_minutes": int(WINDOW.total_seconds() // 60),
        "jobs_per_minute": jobs_per_minute(session, now),
        "jobs_by_status": jobs_by_status(session),
        "in_flight": features_in_flight(session),
        "durations": durations(session, since),
        "failures": {
            "recent": failures_by_code(session, since),
            "total": failures_by_code(session, None),
        },
        "cost": {
            "last_hour": token_cost(session, prices, now - HOUR),
            "event": event,
            "per_finished_job_usd": (
                round(event["cost_usd"] / finished_jobs, 6) if finished_jobs else 0.0
            ),
        },
        "backlog": {
            "waiting": backlog.waiting,
            "oldest_wait_s": round(backlog.oldest_wait_s, 1),
            "drained_per_min": round(backlog.drained_per_s * 60, 1),
        },
        "flower_url": settings.flower_url,
    }
    overview.update(
        _from_redis(
            sources,
            backlog_reason=overloaded(backlog, settings.max_backlog, settings.max_queue_wait_s),
        )
    )
    return overview


def _from_redis(sources: Sources, backlog_reason: str | None) -> dict[str, Any]:
    """The parts read from Redis and the broker; ``None`` for each that cannot be read."""
    found: dict[str, Any] = {"queues": None, "workers": None, "model_calls": None, "quota": None}
    paused = intake_paused(sources.progress)
    found["intake"] = {
        "open": paused is None and backlog_reason is None,
        "paused": paused,
        "overloaded": backlog_reason,
    }
    if sources.broker is not None:
        try:
            found["queues"] = queue_depths(sources.broker, ALL_QUEUES)
        except redis.RedisError as exc:
            log.warning("overview_queues_unreadable", error=type(exc).__name__)
    try:
        found["workers"] = workers_online(sources.progress)
        usage = read_usage(sources.progress, int(WINDOW.total_seconds() // 60))
        found["model_calls"] = {"recent": usage.recent, "total": usage.total}
        settings = sources.settings
        found["quota"] = quota_in_use(
            sources.progress,
            [settings.text_model, settings.image_model],
            settings.gemini_rpm,
            time.time(),
        )
    except redis.RedisError as exc:
        log.warning("overview_redis_unreadable", error=type(exc).__name__)
    return found
