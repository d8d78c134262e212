"""Finding jobs for the dashboard: filters staff need that clients never do.

A client lists its own jobs by status and kind (:func:`refract.jobs.store.list_jobs`);
an operator also looks for every job whose features failed with one error code, or the
jobs of one API key (one booth's kiosk), and wants each job's cost beside it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from refract.core.models import ApiKey, FeatureRun, Job
from refract.jobs.store import decode_cursor, encode_cursor
from refract.ops.pricing import PriceTable


@dataclass(frozen=True)
class JobFilter:
    """What the jobs page filters by; an empty field does not filter."""

    status: str | None = None
    kind: str | None = None
    error_code: str | None = None
    key_name: str | None = None


@dataclass(frozen=True)
class JobRow:
    """One line of the jobs page."""

    job: Job
    key_name: str | None
    cost_usd: float
    error_codes: list[str]


def job_cost(job: Job, prices: PriceTable) -> float:
    """The estimated dollars a job's features spent on tokens."""
    return sum(prices.cost(run.model, run.input_tokens, run.output_tokens) for run in job.features)


def find_jobs(
    session: Session,
    wanted: JobFilter,
    prices: PriceTable,
    *,
    limit: int = 50,
    cursor: str | None = None,
) -> tuple[list[JobRow], str | None]:
    """Jobs matching ``wanted``, newest first, and the cursor of the next page."""
    query = select(Job, ApiKey.name).outerjoin(ApiKey, ApiKey.id == Job.owner_key_id)
    if wanted.status:
        query = query.where(Job.status == wanted.status)
    if wanted.kind:
        query = query.where(Job.kind == wanted.kind)
    if wanted.key_name:
        query = query.where(ApiKey.name == wanted.key_name)
    if wanted.error_code:
        failed = select(FeatureRun.job_id).where(FeatureRun.error_code == wanted.error_code)
        query = query.where(Job.id.in_(failed))
    if cursor:
        created, job_id = decode_cursor(cursor)
        query = query.where(
            or_(Job.created_at < created, and_(Job.created_at == created, Job.id < job_id))
        )
    query = query.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit + 1)
    rows = [
        JobRow(
            job=job,
            key_name=name,
            cost_usd=job_cost(job, prices),
            error_codes=sorted({run.error_code for run in job.features if run.error_code}),
        )
        for job, name in session.execute(query)
    ]
    next_cursor = encode_cursor(rows[limit - 1].job) if len(rows) > limit else None
    return rows[:limit], next_cursor


def owner_name(session: Session, owner_key_id: uuid.UUID | None) -> str | None:
    """The name of the key that created a job (None with auth off or a deleted key)."""
    if owner_key_id is None:
        return None
    key = session.get(ApiKey, owner_key_id)
    return key.name if key is not None else None


def error_codes_seen(session: Session) -> list[str]:
    """Every error code features have failed with, for the filter's choices."""
    codes = session.scalars(
        select(FeatureRun.error_code).where(FeatureRun.error_code.is_not(None)).distinct()
    )
    return sorted(code for code in codes if code)
