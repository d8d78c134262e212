"""The job resource of API.md, built from database rows.

The same function builds the Redis snapshot (in the worker, right after a change) and
the Postgres fallback (in the API), so both always agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from refract.core.models import FeatureRun, Job


def iso(value: datetime | None) -> str | None:
    """RFC 3339 in UTC with a ``Z``; SQLite's naive datetimes are taken as UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def job_links(job_id: str) -> dict[str, str]:
    """The job's related URLs."""
    return {"self": f"/api/v1/jobs/{job_id}", "events": f"/api/v1/jobs/{job_id}/events"}


def feature_resource(run: FeatureRun) -> dict[str, Any]:
    """One entry of the job resource's ``features``."""
    error = None
    if run.error_code:
        error = {"code": run.error_code, "message": run.error_message or ""}
    usage = None
    if run.input_tokens is not None or run.output_tokens is not None:
        usage = {"input_tokens": run.input_tokens, "output_tokens": run.output_tokens}
    return {
        "status": run.status,
        "progress": round(run.progress, 3),
        "attempts": run.attempts,
        "result": run.result,
        "error": error,
        "backend": run.backend,
        "model": run.model,
        "prompt_version": run.prompt_version,
        "usage": usage,
        "queued_at": iso(run.queued_at),
        "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
    }


def job_input_summary(job: Job) -> dict[str, Any]:
    """What the job was asked to work on, without bulky inline material."""
    data = job.input or {}
    if job.kind == "video":
        source = data.get("source") or {}
        return {
            "url": data.get("url"),
            "video_id": data.get("video_id"),
            "title": source.get("title") if source else data.get("title"),
            "inline_source": bool(source),
        }
    return {"prompt": data.get("prompt", ""), "photo_url": data.get("photo_url")}


def job_resource(job: Job) -> dict[str, Any]:
    """The full job resource (see API.md, "The job resource")."""
    job_id = str(job.id)
    return {
        "id": job_id,
        "kind": job.kind,
        "status": job.status,
        "progress": round(job.progress, 3),
        "language": job.language,
        "input": job_input_summary(job),
        "created_at": iso(job.created_at),
        "updated_at": iso(job.updated_at),
        "finished_at": iso(job.finished_at),
        "features": {run.feature: feature_resource(run) for run in job.features},
        "links": job_links(job_id),
        "version": job.version,
    }


def etag_for(job_id: str, version: int) -> str:
    """The strong ETag of a job at ``version``; snapshot and database give the same."""
    return f'"{job_id[:8]}-{version}"'
