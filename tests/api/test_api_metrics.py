"""``GET /metrics``: admins only, the Prometheus text format, and what it counts.

No worker runs here: what the API records (jobs submitted) and what is read at scrape
time (jobs per status, features in flight, queue depth from the broker's lists) are
checked; what workers record across processes is the integration layer's
(``tests/integration/test_metrics.py``).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from refract.jobs.queues import PRIORITY_SEPARATOR, PRIORITY_STEPS
from tests.support.bodies import video_body
from tests.support.keys import bearer, make_key
from tests.support.metrics import Samples, parse, value


@pytest.fixture
def guarded(make_app: Callable[..., Flask]) -> FlaskClient:
    """A client of an app that requires keys."""
    return make_app(auth="required", key_cache_s=0).test_client()


def scrape(client: FlaskClient, secret: str | None = None) -> Samples:
    response = client.get("/metrics", headers=bearer(secret) if secret else {})
    assert response.status_code == 200, response.get_data(as_text=True)
    return parse(response.get_data(as_text=True))


def messages_in(broker: redis.Redis[bytes], queue: str) -> int:
    keys = [f"{queue}{PRIORITY_SEPARATOR}{step}" if step else queue for step in PRIORITY_STEPS]
    return sum(int(broker.llen(key)) for key in keys)


def test_no_key_is_401_and_a_client_key_403(guarded: FlaskClient) -> None:
    missing = guarded.get("/metrics")
    assert missing.status_code == 401
    assert missing.mimetype == "application/problem+json"
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")

    client_key = make_key("booth-1")
    forbidden = guarded.get("/metrics", headers=bearer(client_key))
    assert forbidden.status_code == 403
    assert forbidden.mimetype == "application/problem+json"
    assert "admin" in forbidden.get_json()["detail"]

    assert guarded.get("/metrics", headers=bearer("rk_made-up")).status_code == 401


def test_an_admin_key_gets_the_text_format(guarded: FlaskClient) -> None:
    admin = make_key("staff", "admin")
    response = guarded.get("/metrics", headers=bearer(admin))
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert response.headers["Cache-Control"] == "no-store"
    text = response.get_data(as_text=True)
    for name in (
        "refract_jobs_submitted_total",
        "refract_feature_duration_seconds",
        "refract_model_calls_total",
        "refract_model_tokens_total",
        "refract_rate_limiter_wait_seconds",
    ):
        assert f"# HELP {name} " in text, name
    samples = parse(text)
    assert value(samples, "refract_scrape_source_up", source="database") == 1
    assert value(samples, "refract_scrape_source_up", source="broker") == 1


def test_a_submitted_job_is_counted_by_kind_and_seen_in_every_gauge(
    guarded: FlaskClient, redis_broker: redis.Redis[bytes]
) -> None:
    admin, booth = make_key("staff", "admin"), make_key("booth-1")
    before = scrape(guarded, admin)
    assert value(before, "refract_jobs", status="queued") == 0
    assert value(before, "refract_queue_depth", queue="text") == 0

    created = guarded.post("/api/v1/jobs", json=video_body(), headers=bearer(booth))
    assert created.status_code == 202, created.get_json()
    # An idempotent replay is not a new job.
    for _ in range(2):
        replay = guarded.post(
            "/api/v1/jobs", json=video_body(), headers={**bearer(booth), "Idempotency-Key": "k1"}
        )
        assert replay.status_code in (200, 202)

    after = scrape(guarded, admin)
    submitted = value(after, "refract_jobs_submitted_total", kind="video") - value(
        before, "refract_jobs_submitted_total", kind="video"
    )
    assert submitted == 2
    assert value(after, "refract_jobs_submitted_total", kind="photocard") == value(
        before, "refract_jobs_submitted_total", kind="photocard"
    )
    # Read at scrape time: Postgres for jobs and features, the broker's lists for queues.
    assert value(after, "refract_jobs", status="queued") == 2
    assert value(after, "refract_jobs", status="succeeded") == 0
    for feature in ("summary", "comments", "thumbnail"):
        assert value(after, "refract_features_in_flight", feature=feature, status="queued") == 2
    assert value(after, "refract_features_in_flight", feature="card", status="queued") == 0
    assert value(after, "refract_queue_depth", queue="text") == messages_in(redis_broker, "text")
    assert value(after, "refract_queue_depth", queue="text") == 4  # summary, comments x 2
    assert value(after, "refract_queue_depth", queue="image") == 2  # thumbnail x 2
    assert value(after, "refract_queue_depth", queue="maintenance") == 0

    redis_broker.flushdb()
    drained = scrape(guarded, admin)
    assert value(drained, "refract_queue_depth", queue="text") == 0


def test_a_broker_that_cannot_be_read_leaves_the_rest_of_the_scrape(
    make_app: Callable[..., Flask],
) -> None:
    # Nothing listens on port 1: the broker's lists cannot be read, the database can.
    client = make_app(broker_url="redis://127.0.0.1:1/0").test_client()
    samples = scrape(client)
    assert value(samples, "refract_scrape_source_up", source="broker") == 0
    assert value(samples, "refract_scrape_source_up", source="database") == 1
    assert not any(name == "refract_queue_depth" for name, _ in samples)
    assert ("refract_jobs", frozenset({("status", "queued")})) in samples


def test_metrics_is_in_the_openapi_document_and_needs_a_key(client: FlaskClient) -> None:
    doc = client.get("/api/v1/openapi.json").get_json()
    operation = doc["paths"]["/metrics"]["get"]
    assert operation["operationId"] == "getMetrics"
    assert "text/plain" in operation["responses"]["200"]["content"]
    assert {"401", "403"} <= set(operation["responses"])
    assert operation.get("security") != []
