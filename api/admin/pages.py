"""The dashboard's pages: log in and out, the overview, the jobs list, one job.

Each page is rendered whole on the server; its live panel is then refreshed by
``static/admin.js`` from the matching ``/admin/live/...`` fragment, so a job appears and
finishes on screen without a reload.
"""

from __future__ import annotations

from flask import redirect, render_template, request, url_for
from werkzeug.wrappers import Response as Redirect

from api.admin import data
from api.admin.blueprint import bp
from api.admin.session import log_in, log_out, session_principal
from api.db import get_db
from api.services import services
from refract.access.keys import find_active_key
from refract.jobs.catalog import FEATURES, JobKind, JobStatus
from refract.jobs.store import get_job
from refract.ops.joblist import error_codes_seen


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a dashboard path only, never another site."""
    if target and target.startswith("/admin") and not target.startswith("//"):
        return target
    return url_for("admin.overview")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Redirect | str | tuple[str, int]:
    """The login form, and logging in with an admin key."""
    target = safe_next(request.values.get("next"))
    if services().settings.auth == "off" or session_principal() is not None:
        return redirect(target, code=303)
    if request.method == "GET":
        return render_template("admin/login.html", next=target, error=None)
    key = find_active_key(get_db(), (request.form.get("key") or "").strip())
    if key is None or key.role != "admin":
        error = "That key is unknown, revoked, or not an admin key."
        return render_template("admin/login.html", next=target, error=error), 401
    log_in(key)
    return redirect(target, code=303)


@bp.post("/logout")
def logout() -> Redirect:
    """End the session."""
    log_out()
    return redirect(url_for("admin.login"), code=303)


@bp.get("/")
def overview() -> str:
    """The overview: what runs, what failed, how fast, at what cost; intake."""
    return render_template(
        "admin/overview.html", o=data.overview(), error_codes=error_codes_seen(get_db())
    )


@bp.get("/jobs")
def jobs() -> str:
    """The jobs list, filterable by status, kind, error code and API key name."""
    rows, next_cursor = data.job_rows()
    return render_template(
        "admin/jobs.html",
        rows=rows,
        next_cursor=next_cursor,
        wanted=data.job_filter(),
        statuses=[s.value for s in JobStatus],
        kinds=[k.value for k in JobKind],
        error_codes=error_codes_seen(get_db()),
    )


@bp.get("/jobs/<job_id>")
def job(job_id: str) -> str:
    """One job: its inputs, and each feature's status, timings, usage, result, images."""
    found = get_job(get_db(), job_id)
    return render_template(
        "admin/job.html", d=data.job_detail(found), version=found.version, features=FEATURES
    )
