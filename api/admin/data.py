"""What the dashboard shows, as JSON (``/admin/api/...``) and as the HTML fragments its
pages refresh every few seconds (``/admin/live/...``).

Both are built from the same view models, so a script reading the JSON and a person
watching the page see the same numbers.
"""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, jsonify, render_template, request

from api.admin.blueprint import bp
from api.db import get_db
from api.services import services
from refract.core.errors import ValidationFailed
from refract.core.models import FeatureRun, Job
from refract.jobs.catalog import JobKind, JobStatus
from refract.jobs.queues import broker_client
from refract.jobs.resource import job_resource
from refract.jobs.store import get_job
from refract.ops.joblist import JobFilter, JobRow, find_jobs, owner_name
from refract.ops.overview import Sources, build_overview
from refract.ops.pricing import PriceTable

PAGE_SIZE = 50


def prices() -> PriceTable:
    """The price table in force."""
    return PriceTable(services().settings.prices_usd_per_mtok)


def overview() -> dict[str, Any]:
    """The overview's figures (:func:`refract.ops.overview.build_overview`)."""
    svc = services()
    broker = current_app.extensions.get("refract.admin_broker")
    if broker is None:
        broker = broker_client(svc.settings.effective_broker_url)
        current_app.extensions["refract.admin_broker"] = broker
    return build_overview(get_db(), Sources(svc.bus.client, broker, svc.settings))


def job_filter() -> JobFilter:
    """The jobs page's filters, from the query string (unknown values are refused)."""
    args = request.args
    status = args.get("status") or None
    kind = args.get("kind") or None
    if status is not None and status not in set(JobStatus):
        raise ValidationFailed(f"unknown status {status!r}")
    if kind is not None and kind not in set(JobKind):
        raise ValidationFailed(f"unknown kind {kind!r}")
    return JobFilter(
        status=status,
        kind=kind,
        error_code=(args.get("error_code") or "").strip() or None,
        key_name=(args.get("key") or "").strip() or None,
    )


def job_rows() -> tuple[list[JobRow], str | None]:
    """The jobs the current filters select, newest first, and the next page's cursor."""
    return find_jobs(
        get_db(), job_filter(), prices(), limit=PAGE_SIZE, cursor=request.args.get("cursor")
    )


def row_json(row: JobRow) -> dict[str, Any]:
    """One job of the list, as JSON."""
    job = row.job
    return {
        "id": str(job.id),
        "kind": job.kind,
        "status": job.status,
        "progress": round(job.progress, 3),
        "key": row.key_name,
        "created_at": job.created_at.isoformat(),
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "cost_usd": round(row.cost_usd, 6),
        "error_codes": row.error_codes,
        "features": {run.feature: run.status for run in job.features},
    }


def _seconds(run: FeatureRun) -> tuple[float | None, float | None]:
    """(time waiting in the queue, run time) of a feature, where known."""
    waited = ran = None
    if run.queued_at and run.started_at:
        waited = max(0.0, (run.started_at - run.queued_at).total_seconds())
    if run.started_at and run.finished_at:
        ran = max(0.0, (run.finished_at - run.started_at).total_seconds())
    return waited, ran


def job_detail(job: Job) -> dict[str, Any]:
    """Everything the job page shows: the resource (with signed image URLs) plus, per
    feature, its cost and timings, and the key that made the job."""
    table = prices()
    resource = services().signer.sign_urls(job_resource(job))
    extras = {}
    total = 0.0
    for run in job.features:
        cost = table.cost(run.model, run.input_tokens, run.output_tokens)
        total += cost
        waited, ran = _seconds(run)
        extras[run.feature] = {"cost_usd": round(cost, 6), "queue_s": waited, "run_s": ran}
    return {
        "job": resource,
        "key": owner_name(get_db(), job.owner_key_id),
        "cost_usd": round(total, 6),
        "feature_extras": extras,
    }


@bp.get("/api/overview")
def api_overview() -> Response:
    """The overview's figures as JSON."""
    return jsonify(overview())


@bp.get("/api/jobs")
def api_jobs() -> Response:
    """Jobs as JSON, filtered like the jobs page (``status``, ``kind``, ``error_code``,
    ``key``), with ``next_cursor``."""
    rows, next_cursor = job_rows()
    return jsonify({"items": [row_json(row) for row in rows], "next_cursor": next_cursor})


@bp.get("/api/jobs/<job_id>")
def api_job(job_id: str) -> Response:
    """One job with its costs and timings, as JSON."""
    return jsonify(job_detail(get_job(get_db(), job_id)))


@bp.get("/live/overview")
def live_overview() -> str:
    """The overview's live panel (HTML fragment)."""
    return render_template("admin/_overview.html", o=overview())


@bp.get("/live/jobs")
def live_jobs() -> str:
    """The jobs table's rows for the current filters (HTML fragment)."""
    rows, next_cursor = job_rows()
    return render_template("admin/_job_rows.html", rows=rows, next_cursor=next_cursor)


@bp.get("/live/jobs/<job_id>")
def live_job(job_id: str) -> Response:
    """The job page's live panel (HTML fragment); ``X-Version`` tells the page whether
    anything changed since it last swapped the panel in."""
    job = get_job(get_db(), job_id)
    html = render_template("admin/_job_panel.html", d=job_detail(job))
    response = Response(html, mimetype="text/html")
    response.headers["X-Version"] = str(job.version)
    return response
