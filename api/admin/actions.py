"""What staff do from the dashboard: cancel a job, retry a feature, retry every failure
with one error code, pause and resume intake.

Each action is a form POST (with the session's CSRF token, :mod:`api.admin.guard`) that
does its work, says what it did in a flash message, and sends the browser back to the
page it came from. The state changes themselves live in :mod:`refract.jobs.control` and
:mod:`refract.jobs.admission`, shared with the API and the CLI.
"""

from __future__ import annotations

from datetime import timedelta

import structlog
from flask import flash, redirect, request, url_for
from werkzeug.wrappers import Response as Redirect

from api.admin.blueprint import bp
from api.db import get_db
from api.principal import current_principal
from api.services import services
from refract.core.errors import FieldError, ValidationFailed
from refract.core.ids import parse_id
from refract.core.models import utcnow
from refract.jobs.admission import pause_intake, resume_intake
from refract.jobs.control import cancel_job, enqueue_retries, retry_failed, retry_feature

log = structlog.get_logger(__name__)

# The bulk retry's time windows, in minutes, as the form offers them.
WINDOWS_MIN = (15, 60, 240, 1440)


def _back(default: str) -> Redirect:
    """303 to the page the form came from (a dashboard path only)."""
    target = request.form.get("back") or ""
    if not target.startswith("/admin") or target.startswith("//"):
        target = default
    return redirect(target, code=303)


@bp.post("/jobs/<job_id>/cancel")
def cancel(job_id: str) -> Redirect:
    """Cancel a job: what has not started never will, what runs stops at its next step."""
    key = parse_id(job_id, "job")
    svc = services()
    session = get_db()
    job = cancel_job(session, svc.bus, key)
    session.commit()
    log.info("admin_cancel", job_id=job_id, status=job.status, by=current_principal().name)
    flash(f"Job {job_id[:8]} is {job.status}.")
    return _back(url_for("admin.job", job_id=job_id))


@bp.post("/jobs/<job_id>/features/<feature>/retry")
def retry(job_id: str, feature: str) -> Redirect:
    """Run a finished feature again, and the features that depend on it."""
    key = parse_id(job_id, "job")
    svc = services()
    session = get_db()
    features = retry_feature(session, svc.bus, key, feature, admin=True)
    session.commit()
    enqueue_retries(svc.celery, session, {key: features})
    session.commit()
    log.info("admin_retry", job_id=job_id, features=features, by=current_principal().name)
    flash(f"Retrying {', '.join(features)} of job {job_id[:8]}.")
    return _back(url_for("admin.job", job_id=job_id))


@bp.post("/retry-failed")
def retry_all_failed() -> Redirect:
    """Retry every feature that failed with one error code within a recent window."""
    code = (request.form.get("error_code") or "").strip()
    if not code:
        raise ValidationFailed(
            "name the error code to retry", errors=[FieldError("error_code", "required")]
        )
    try:
        minutes = int(request.form.get("window_min") or "15")
    except ValueError:
        minutes = 0
    if minutes not in WINDOWS_MIN:
        raise ValidationFailed(
            "pick one of the offered windows",
            errors=[FieldError("window_min", f"one of {', '.join(map(str, WINDOWS_MIN))}")],
        )
    svc = services()
    session = get_db()
    until = utcnow()
    plan = retry_failed(
        session, svc.bus, error_code=code, since=until - timedelta(minutes=minutes), until=until
    )
    session.commit()
    enqueue_retries(svc.celery, session, plan)
    session.commit()
    count = sum(len(features) for features in plan.values())
    log.info("admin_retry_failed", error_code=code, jobs=len(plan), by=current_principal().name)
    flash(f"Retrying {count} feature(s) of {len(plan)} job(s) that failed with {code}.")
    return _back(url_for("admin.overview"))


@bp.post("/intake/pause")
def pause() -> Redirect:
    """Close intake: new submissions get 503 until it is resumed."""
    pause_intake(services().bus.client, current_principal().name)
    log.info("admin_intake_paused", by=current_principal().name)
    flash("Intake is paused: new jobs are refused until you resume it.")
    return _back(url_for("admin.overview"))


@bp.post("/intake/resume")
def resume() -> Redirect:
    """Open intake again."""
    resume_intake(services().bus.client)
    log.info("admin_intake_resumed", by=current_principal().name)
    flash("Intake is open.")
    return _back(url_for("admin.overview"))
