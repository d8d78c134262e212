"""Limits at the front door: per-key rates (429), admission control (503), daily caps."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update

from launch.intake import run_intake
from refract.core.db import get_sessionmaker, session_scope
from refract.core.models import FeatureRun, utcnow
from tests.support.bodies import video_body
from tests.support.database_faults import DatabaseFaults
from tests.support.jobs import table_counts
from tests.support.keys import bearer, make_key
from tests.support.services import free_port


def guarded(make_app: Callable[..., Flask], **settings: Any) -> FlaskClient:
    return make_app(auth="required", key_cache_s=0, **settings).test_client()


def post(client: FlaskClient, secret: str, **headers: str) -> Any:
    return client.post("/api/v1/jobs", json=video_body(), headers={**bearer(secret), **headers})


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_json()
    assert response.mimetype == "application/problem+json"
    assert int(response.headers["Retry-After"]) >= 1
    body: dict[str, Any] = response.get_json()
    return body


def test_submissions_past_the_rate_are_429_with_ratelimit_fields(
    make_app: Callable[..., Flask],
) -> None:
    client = guarded(make_app, submit_rate="3/min")
    secret = make_key("booth-1")

    answers = [post(client, secret) for _ in range(4)]

    assert [a.status_code for a in answers] == [202, 202, 202, 429]
    assert answers[0].headers["RateLimit-Policy"] == '"submit";q=3;w=60'
    assert answers[0].headers["RateLimit"].startswith('"submit";r=2;t=')
    assert answers[2].headers["RateLimit"].startswith('"submit";r=0;t=')
    refused = assert_problem(answers[3], 429)
    assert refused["code"] == "rate_limited"
    assert answers[3].headers["RateLimit-Policy"] == '"submit";q=3;w=60'
    assert 1 <= int(answers[3].headers["Retry-After"]) <= 20  # one slot per 20 s
    assert table_counts()["jobs"] == 3  # nothing created when refused


def test_reads_are_counted_apart_from_submissions(make_app: Callable[..., Flask]) -> None:
    client = guarded(make_app, submit_rate="1/min", read_rate="2/min")
    secret = make_key("booth-1")
    assert post(client, secret).status_code == 202
    assert post(client, secret).status_code == 429

    reads = [client.get("/api/v1/jobs", headers=bearer(secret)) for _ in range(3)]

    assert [r.status_code for r in reads] == [200, 200, 429]
    assert reads[0].headers["RateLimit-Policy"] == '"read";q=2;w=60'


def test_keys_have_buckets_of_their_own_and_their_own_rate(
    make_app: Callable[..., Flask],
) -> None:
    client = guarded(make_app, submit_rate="1/min")
    busy, other, vip = make_key("booth-1"), make_key("booth-2"), make_key("stage", rate="5/min")

    assert post(client, busy).status_code == 202
    assert post(client, busy).status_code == 429
    assert post(client, other).status_code == 202  # not booth-1's bucket
    assert [post(client, vip).status_code for _ in range(5)] == [202] * 5


def test_public_routes_and_auth_off_are_not_counted(make_app: Callable[..., Flask]) -> None:
    client = guarded(make_app, read_rate="1/min")
    assert all(client.get("/healthz").status_code == 200 for _ in range(3))
    assert "RateLimit" not in client.get("/healthz").headers
    loopback = make_app(auth="off", submit_rate="1/min").test_client()
    assert [loopback.post("/api/v1/jobs", json=video_body()).status_code for _ in range(3)] == [
        202
    ] * 3


def test_a_backlog_past_its_limit_refuses_new_jobs_and_reads_go_on(
    make_app: Callable[..., Flask],
) -> None:
    client = guarded(make_app, max_backlog=4)
    secret = make_key("booth-1")
    first, second = post(client, secret), post(client, secret)  # 6 features queued
    assert first.status_code == second.status_code == 202
    # The gauge measures at most once a second per process; a new app measures anew.
    client = guarded(make_app, max_backlog=4)

    refused = post(client, secret)

    problem = assert_problem(refused, 503)
    assert problem["code"] == "overloaded" and "waiting" in problem["detail"]
    assert table_counts()["jobs"] == 2
    assert client.get(first.headers["Location"], headers=bearer(secret)).status_code == 200
    # An idempotent replay of a job already taken is answered, not refused.
    replay_key = {"Idempotency-Key": "visitor-9"}
    fresh = guarded(make_app)
    assert post(fresh, secret, **replay_key).status_code == 202
    assert post(guarded(make_app, max_backlog=4), secret, **replay_key).status_code == 200


def test_a_queue_that_stopped_moving_refuses_new_jobs(make_app: Callable[..., Flask]) -> None:
    client = guarded(make_app)
    secret = make_key("booth-1")
    assert post(client, secret).status_code == 202
    with session_scope() as session:
        session.execute(update(FeatureRun).values(queued_at=utcnow() - timedelta(minutes=10)))

    refused = guarded(make_app, max_queue_wait_s=120).post(
        "/api/v1/jobs", json=video_body(), headers=bearer(secret)
    )

    assert "waited" in assert_problem(refused, 503)["detail"]


def test_paused_intake_refuses_submissions_until_resumed(
    make_app: Callable[..., Flask], redis_progress: redis.Redis[str]
) -> None:
    client = guarded(make_app)
    secret = make_key("booth-1")
    url = client.application.extensions["refract"].settings.effective_redis_url
    out = io.StringIO()

    assert run_intake(url, "pause", out=out) == 0
    refused = post(client, secret)
    assert "paused" in assert_problem(refused, 503)["detail"]
    assert client.get("/api/v1/jobs", headers=bearer(secret)).status_code == 200
    assert run_intake(url, "status", out=out) == 0 and "paused by" in out.getvalue()

    assert run_intake(url, "resume", out=out) == 0
    assert post(client, secret).status_code == 202
    assert out.getvalue().rstrip().endswith("intake: open")


def test_a_daily_cap_is_429_until_midnight_and_replays_do_not_count(
    make_app: Callable[..., Flask],
) -> None:
    client = guarded(make_app)
    secret = make_key("kiosk", max_jobs_per_day=2)

    first = post(client, secret, **{"Idempotency-Key": "a"})
    replay = post(client, secret, **{"Idempotency-Key": "a"})
    second = post(client, secret)
    third = post(client, secret)

    assert (first.status_code, replay.status_code, second.status_code) == (202, 200, 202)
    problem = assert_problem(third, 429)
    assert "a day" in problem["detail"]
    assert int(third.headers["Retry-After"]) <= 86400
    assert table_counts()["jobs"] == 2


def test_a_job_that_could_not_be_created_does_not_count_against_the_day(
    make_app: Callable[..., Flask], redis_progress: redis.Redis[str]
) -> None:
    client = guarded(make_app)
    secret = make_key("kiosk", max_jobs_per_day=1)
    faults = DatabaseFaults(get_sessionmaker())
    faults.fail_next(1)  # the job's commit: Postgres went away mid-request
    try:
        failed = post(client, secret)
    finally:
        faults.close()

    assert failed.status_code == 503 and faults.failed == 1
    assert table_counts()["jobs"] == 0
    assert post(client, secret).status_code == 202  # the day's one job is still there
    assert post(client, secret).status_code == 429
    (counter,) = redis_progress.keys("refract:daily:*")
    assert redis_progress.get(counter) == "1"  # refusals gave their count back


def test_limits_let_calls_through_when_redis_is_unreachable(
    make_app: Callable[..., Flask],
) -> None:
    # Fail open: a limiter outage must not close the booth; the job reaches Postgres and
    # the reconciler sends it once the broker is back.
    dead = f"redis://127.0.0.1:{free_port()}/0"
    client = guarded(make_app, redis_url=dead, broker_url=dead, submit_rate="1/min")
    secret = make_key("kiosk", max_jobs_per_day=1)

    answers = [post(client, secret) for _ in range(2)]
    read = client.get("/api/v1/jobs", headers=bearer(secret))

    assert [a.status_code for a in answers] == [202, 202]
    assert read.status_code == 200 and len(read.get_json()["items"]) == 2
    assert all("RateLimit" not in a.headers for a in [*answers, read])


@pytest.mark.parametrize("rate", ["3/min", "1/sec", "100/hour"])
def test_the_policy_field_names_the_rate(make_app: Callable[..., Flask], rate: str) -> None:
    client = guarded(make_app, submit_rate=rate)
    answer = post(client, make_key("booth-1"))
    count, unit = rate.split("/")
    window = {"min": 60, "sec": 1, "hour": 3600}[unit]
    assert answer.headers["RateLimit-Policy"] == f'"submit";q={count};w={window}'


def test_the_document_declares_the_limits(make_app: Callable[..., Flask]) -> None:
    doc = make_app().test_client().get("/api/v1/openapi.json").get_json()
    operations = {op["operationId"]: op for path in doc["paths"].values() for op in path.values()}

    for name in ("createJob", "listJobs", "getJob", "streamJobEvents", "deleteJob"):
        responses = operations[name]["responses"]
        limited = responses["429"]
        assert {"Retry-After", "RateLimit-Policy", "RateLimit"} <= set(limited["headers"]), name
        assert "application/problem+json" in limited["content"], name
        for code in (c for c in responses if c[0] == "2" or c == "304"):
            assert {"RateLimit-Policy", "RateLimit"} <= set(responses[code]["headers"]), name
    assert "overloaded" in operations["createJob"]["responses"]["503"]["description"]
    for public in ("getArtifact", "healthz", "readyz"):
        assert "429" not in operations[public]["responses"], public
