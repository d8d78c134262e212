"""The operators' dashboard over HTTP: login, sessions, CSRF, pages, JSON and actions.

The browser itself is exercised in tests/browser; here the Flask test client checks the
contract: who gets in, what each page and endpoint shows, and what each action changes.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from refract.core.db import session_scope
from refract.core.models import FeatureRun, utcnow
from refract.jobs.admission import PAUSED_KEY
from refract.jobs.catalog import FeatureStatus
from refract.observability.usage import record_model_call
from tests.support.bodies import video_body
from tests.support.jobs import advance, finish, load_job, start
from tests.support.keys import bearer, make_key, revoke

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def guarded_app(make_app: Callable[..., Flask]) -> Flask:
    """An app that requires keys, trusting a looked-up key for 0 s."""
    return make_app(auth="required", key_cache_s=0)


@pytest.fixture
def browser(guarded_app: Flask) -> FlaskClient:
    """A client that keeps cookies, as a browser does."""
    return guarded_app.test_client()


def csrf_of(page: str) -> str:
    found = CSRF_RE.search(page)
    assert found, "the page has no CSRF token"
    return found.group(1)


def log_in(client: FlaskClient, secret: str) -> str:
    """Log in through the form; the session's CSRF token."""
    form = client.get("/admin/login").get_data(as_text=True)
    response = client.post(
        "/admin/login", data={"key": secret, "csrf_token": csrf_of(form), "next": "/admin/"}
    )
    assert response.status_code == 303, response.get_data(as_text=True)
    return csrf_of(client.get("/admin/").get_data(as_text=True))


def submit(client: FlaskClient, secret: str, **fields: Any) -> str:
    response = client.post("/api/v1/jobs", json=video_body(**fields), headers=bearer(secret))
    assert response.status_code == 202, response.get_json()
    job_id: str = response.get_json()["id"]
    return job_id


def test_pages_send_a_person_to_log_in_and_scripts_get_401(browser: FlaskClient) -> None:
    for path in ("/admin/", "/admin/jobs", f"/admin/jobs/{uuid.uuid4()}"):
        response = browser.get(path)
        assert response.status_code == 303
        assert response.headers["Location"].startswith("/admin/login?next=/admin")
    for path in ("/admin/api/overview", "/admin/api/jobs", "/admin/live/overview", "/metrics"):
        response = browser.get(path)
        assert response.status_code == 401, path
        assert response.mimetype == "application/problem+json"
    # Assets and the login form are open, so the login page can be drawn.
    for asset in ("admin.css", "admin.js"):
        response = browser.get(f"/admin/static/{asset}")
        assert response.status_code == 200
        response.close()  # a file's body: closed, as a server closes it
    assert browser.get("/admin/login").status_code == 200


def test_login_needs_an_admin_key_and_a_csrf_token(browser: FlaskClient) -> None:
    client_key = make_key("kiosk-1")
    admin_key = make_key("lead", role="admin")
    form = browser.get("/admin/login").get_data(as_text=True)
    token = csrf_of(form)

    no_token = browser.post("/admin/login", data={"key": admin_key})
    assert no_token.status_code == 403
    assert no_token.get_json()["code"] == "csrf_failed"

    for wrong in (client_key, admin_key + "x", ""):
        refused = browser.post("/admin/login", data={"key": wrong, "csrf_token": token})
        assert refused.status_code == 401
        assert "not an admin key" in refused.get_data(as_text=True)
    assert browser.get("/admin/").status_code == 303

    accepted = browser.post(
        "/admin/login", data={"key": admin_key, "csrf_token": token, "next": "/admin/jobs"}
    )
    assert accepted.status_code == 303
    assert accepted.headers["Location"] == "/admin/jobs"
    cookie = accepted.headers["Set-Cookie"]
    assert "refract_admin=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert admin_key not in cookie
    assert browser.get("/admin/jobs").status_code == 200


def test_login_never_redirects_off_the_dashboard(browser: FlaskClient) -> None:
    admin_key = make_key("lead", role="admin")
    token = csrf_of(browser.get("/admin/login").get_data(as_text=True))
    for target in ("https://evil.example/", "//evil.example/admin", "/api/v1/jobs"):
        response = browser.post(
            "/admin/login", data={"key": admin_key, "csrf_token": token, "next": target}
        )
        assert response.headers["Location"] == "/admin/"
        browser.post("/admin/logout", data={"csrf_token": csrf_of(browser.get("/admin/").text)})
        token = csrf_of(browser.get("/admin/login").get_data(as_text=True))


def test_a_revoked_key_ends_its_sessions_and_logout_ends_one(browser: FlaskClient) -> None:
    admin_key = make_key("lead", role="admin")
    token = log_in(browser, admin_key)
    assert browser.get("/admin/api/overview").status_code == 200

    logged_out = browser.post("/admin/logout", data={"csrf_token": token})
    assert logged_out.status_code == 303
    assert browser.get("/admin/api/overview").status_code == 401

    log_in(browser, admin_key)
    revoke("lead")
    assert browser.get("/admin/api/overview").status_code == 401
    assert browser.get("/admin/").status_code == 303


def test_a_session_ends_after_its_lifetime(make_app: Callable[..., Flask]) -> None:
    app = make_app(auth="required", key_cache_s=0, admin_session_s=60)
    browser = app.test_client()
    log_in(browser, make_key("lead", role="admin"))
    with browser.session_transaction() as session:
        session["login_at"] -= 61
    assert browser.get("/admin/api/overview").status_code == 401


def test_bearer_keys_work_for_scripts_and_client_keys_are_refused(browser: FlaskClient) -> None:
    admin_key = make_key("lead", role="admin")
    client_key = make_key("kiosk-1")
    assert browser.get("/admin/api/overview", headers=bearer(admin_key)).status_code == 200
    refused = browser.get("/admin/api/overview", headers=bearer(client_key))
    assert refused.status_code == 403
    # A bearer caller is not a browser: no CSRF token needed for its actions.
    paused = browser.post("/admin/intake/pause", headers=bearer(admin_key))
    assert paused.status_code == 303


def test_actions_refuse_a_missing_or_foreign_csrf_token(
    browser: FlaskClient, redis_progress: redis.Redis[str]
) -> None:
    log_in(browser, make_key("lead", role="admin"))
    for data in ({}, {"csrf_token": "forged"}):
        response = browser.post("/admin/intake/pause", data=data)
        assert response.status_code == 403
        assert response.get_json()["code"] == "csrf_failed"
    assert redis_progress.get(PAUSED_KEY) is None


def test_pause_and_resume_intake(browser: FlaskClient, redis_progress: redis.Redis[str]) -> None:
    client_key = make_key("kiosk-1")
    token = log_in(browser, make_key("lead", role="admin"))

    paused = browser.post("/admin/intake/pause", data={"csrf_token": token})
    assert paused.status_code == 303
    assert (redis_progress.get(PAUSED_KEY) or "").startswith("lead at ")
    overview = browser.get("/admin/api/overview").get_json()
    assert overview["intake"]["open"] is False
    assert overview["intake"]["paused"].startswith("lead")
    refused = browser.post("/api/v1/jobs", json=video_body(), headers=bearer(client_key))
    assert refused.status_code == 503
    assert "Resume intake" in browser.get("/admin/").get_data(as_text=True)

    browser.post("/admin/intake/resume", data={"csrf_token": token})
    assert redis_progress.get(PAUSED_KEY) is None
    assert browser.get("/admin/api/overview").get_json()["intake"]["open"] is True
    submit(browser, client_key)


def test_overview_counts_jobs_features_failures_calls_and_cost(
    guarded_app: Flask, browser: FlaskClient, redis_progress: redis.Redis[str]
) -> None:
    client_key = make_key("kiosk-1")
    token = log_in(browser, make_key("lead", role="admin"))
    bus = guarded_app.extensions["refract"].bus
    done = submit(browser, client_key)
    failed = submit(browser, client_key, language="ko")
    submit(browser, client_key, language="fr")  # stays queued

    def with_usage(runs: dict[str, FeatureRun]) -> None:
        finish("summary", "comments", "thumbnail")(runs)
        for run in runs.values():
            assert run.finished_at is not None
            run.started_at = run.finished_at - timedelta(seconds=2)
            run.model, run.input_tokens, run.output_tokens = "gemini-2.5-flash", 1_000_000, 0

    advance(bus, done, with_usage)
    advance(bus, failed, start("summary"))
    advance(bus, failed, finish("summary", "comments", status=FeatureStatus.FAILED))
    record_model_call(redis_progress, "gemini-2.5-flash", "ok")
    record_model_call(redis_progress, "gemini-2.5-flash", "429")

    body = browser.get("/admin/api/overview").get_json()
    assert body["jobs_per_minute"][-1]["count"] + body["jobs_per_minute"][-2]["count"] >= 3
    assert body["jobs_by_status"]["succeeded"] == 1
    assert body["jobs_by_status"]["queued"] == 1
    assert body["in_flight"]["summary"]["queued"] == 1
    assert body["in_flight"]["thumbnail"]["queued"] == 2
    assert body["durations"]["summary"]["p50_s"] == pytest.approx(2.0, abs=0.01)
    assert body["failures"]["recent"] == {"model_timeout": 2}
    assert body["model_calls"]["recent"]["gemini-2.5-flash"] == {"ok": 1, "429": 1}
    # Three features, a million input tokens each, at $0.30 per million.
    assert body["cost"]["event"]["cost_usd"] == pytest.approx(0.9)
    assert body["cost"]["last_hour"]["cost_usd"] == pytest.approx(0.9)
    # No worker runs here: every message sent is still waiting (summary and comments on
    # the text queue, thumbnail on the image queue).
    assert body["queues"] == {"text": 6, "image": 3, "maintenance": 0}
    assert body["intake"]["open"] is True
    assert body["workers"] == []

    page = browser.get("/admin/live/overview").get_data(as_text=True)
    assert "model_timeout" in page
    assert "$0.9000" in page
    assert "No worker is online." in page
    assert csrf_of(page) == token


def test_jobs_list_filters_by_status_kind_error_code_and_key(
    guarded_app: Flask, browser: FlaskClient
) -> None:
    first, second = make_key("kiosk-1"), make_key("kiosk-2")
    log_in(browser, make_key("lead", role="admin"))
    bus = guarded_app.extensions["refract"].bus
    a = submit(browser, first)
    b = submit(browser, second)
    advance(bus, b, finish("summary", status=FeatureStatus.FAILED))

    def ids(query: str) -> set[str]:
        body = browser.get(f"/admin/api/jobs?{query}").get_json()
        return {item["id"] for item in body["items"]}

    assert ids("") == {a, b}
    assert ids("key=kiosk-1") == {a}
    assert ids("error_code=model_timeout") == {b}
    assert ids("status=queued") == {a}
    assert ids("kind=photocard") == set()
    assert browser.get("/admin/api/jobs?status=nonsense").status_code == 422

    rows = browser.get("/admin/live/jobs?key=kiosk-2").get_data(as_text=True)
    assert b in rows and a not in rows
    page = browser.get("/admin/jobs?error_code=model_timeout").get_data(as_text=True)
    assert b[:8] in page and a[:8] not in page


def test_job_page_shows_each_feature_and_the_job_json_its_costs(
    guarded_app: Flask, browser: FlaskClient
) -> None:
    log_in(browser, make_key("lead", role="admin"))
    job_id = submit(browser, make_key("kiosk-1"))

    def used(runs: dict[str, FeatureRun]) -> None:
        finish("summary")(runs)
        run = runs["summary"]
        run.model, run.prompt_version, run.input_tokens, run.output_tokens = (
            "gemini-2.5-flash",
            "summary-v2",
            2000,
            400,
        )

    advance(guarded_app.extensions["refract"].bus, job_id, used)
    page = browser.get(f"/admin/jobs/{job_id}").get_data(as_text=True)
    for text in ("summary-v2", "gemini-2.5-flash", "2,000 in", "summary done", "Cancel job"):
        assert text in page
    panel = browser.get(f"/admin/live/jobs/{job_id}")
    assert panel.headers["X-Version"] == str(load_job(job_id).version)
    detail = browser.get(f"/admin/api/jobs/{job_id}").get_json()
    assert detail["key"] == "kiosk-1"
    assert detail["feature_extras"]["summary"]["cost_usd"] == pytest.approx(
        (2000 * 0.30 + 400 * 2.50) / 1e6
    )
    assert browser.get(f"/admin/api/jobs/{uuid.uuid4()}").status_code == 404


def test_cancel_and_retry_from_the_job_page(
    guarded_app: Flask, browser: FlaskClient, redis_broker: redis.Redis[bytes]
) -> None:
    token = log_in(browser, make_key("lead", role="admin"))
    client_key = make_key("kiosk-1")
    bus = guarded_app.extensions["refract"].bus
    job_id = submit(browser, client_key)

    canceled = browser.post(f"/admin/jobs/{job_id}/cancel", data={"csrf_token": token})
    assert canceled.status_code == 303
    assert canceled.headers["Location"] == f"/admin/jobs/{job_id}"
    assert load_job(job_id).status == "canceled"
    assert f"Job {job_id[:8]} is canceled." in browser.get(canceled.headers["Location"]).text

    other = submit(browser, client_key)
    advance(bus, other, finish("summary", "comments", "thumbnail", status=FeatureStatus.FAILED))
    before = redis_broker.llen("text")
    retried = browser.post(
        f"/admin/jobs/{other}/features/summary/retry", data={"csrf_token": token}
    )
    assert retried.status_code == 303
    # The others stay failed: the job is under way again, not final.
    assert load_job(other).status == "running"
    assert {run.feature: run.status for run in load_job(other).features}["summary"] == "queued"
    assert redis_broker.llen("text") == before + 1


def test_retry_every_failure_with_one_code_in_a_window(
    guarded_app: Flask, browser: FlaskClient
) -> None:
    token = log_in(browser, make_key("lead", role="admin"))
    client_key = make_key("kiosk-1")
    bus = guarded_app.extensions["refract"].bus
    recent, old = submit(browser, client_key), submit(browser, client_key)
    advance(bus, recent, finish("summary", status=FeatureStatus.FAILED))
    advance(bus, old, finish("summary", status=FeatureStatus.FAILED))
    with session_scope() as session:
        run = session.get(FeatureRun, load_job(old).features[0].id)
        assert run is not None
        run.finished_at = utcnow() - timedelta(hours=2)

    response = browser.post(
        "/admin/retry-failed",
        data={"csrf_token": token, "error_code": "model_timeout", "window_min": "15"},
    )
    assert response.status_code == 303
    statuses = {job: load_job(job).features[0].status for job in (recent, old)}
    assert statuses == {recent: "queued", old: "failed"}
    assert "Retrying 1 feature(s) of 1 job(s)" in browser.get("/admin/").text

    bad = browser.post(
        "/admin/retry-failed",
        data={"csrf_token": token, "error_code": "model_timeout", "window_min": "7"},
    )
    assert bad.status_code == 422


def test_with_keys_off_the_dashboard_opens_without_login(make_app: Callable[..., Flask]) -> None:
    browser = make_app().test_client()
    assert browser.get("/admin/login").headers["Location"] == "/admin/"
    page = browser.get("/admin/").get_data(as_text=True)
    assert "keys off" in page
    # CSRF still guards every change: a page on another site cannot pause the booth.
    assert browser.post("/admin/intake/pause").status_code == 403
    assert (
        browser.post("/admin/intake/pause", data={"csrf_token": csrf_of(page)}).status_code == 303
    )
