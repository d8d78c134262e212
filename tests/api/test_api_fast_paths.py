"""The API's fast paths: reads served from the stored snapshot text, 304s without a body,
a read counted and its snapshot fetched together, and a submission in one transaction."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import redis
from flask import Flask
from sqlalchemy import event

from refract.access.signing import Signer
from refract.core.db import get_engine
from refract.jobs.progress import ProgressBus
from refract.jobs.resource import etag_for
from tests.support.bodies import video_body
from tests.support.images import fixture_bytes
from tests.support.jobs import advance, finish, load_job, start
from tests.support.keys import bearer, make_key


def bus_of(app: Flask) -> ProgressBus:
    """The app's progress bus."""
    bus: ProgressBus = app.extensions["refract"].bus
    return bus


def signer_of(app: Flask) -> Signer:
    """The app's URL signer."""
    signer: Signer = app.extensions["refract"].signer
    return signer


def test_a_read_serves_the_stored_snapshot_with_its_urls_signed(
    app: Flask, redis_progress: redis.Redis[str]
) -> None:
    client = app.test_client()
    photo = (io.BytesIO(fixture_bytes("astronaut.png")), "me.png", "image/png")
    created = client.post("/api/v1/jobs", data={"kind": "photocard", "photo": photo})
    assert created.status_code == 202
    job_id = created.get_json()["id"]

    read = client.get(f"/api/v1/jobs/{job_id}")

    stored = redis_progress.hget(ProgressBus.snapshot_key(job_id), "body")
    assert stored is not None and "/api/v1/artifacts/" in stored
    assert read.get_json() == signer_of(app).sign_urls(json.loads(stored))
    assert "sig=" in read.get_json()["input"]["photo_url"]
    assert read.get_json() == created.get_json()
    assert redis_progress.hget(ProgressBus.snapshot_key(job_id), "status") == "queued"


def test_a_snapshot_stored_without_its_status_is_still_answered_in_full(
    app: Flask, redis_progress: redis.Redis[str]
) -> None:
    # A snapshot written before the status was stored beside the body (the version and
    # body alone): the read falls back to parsing the body, answers and 304s alike.
    client = app.test_client()
    job_id = client.post("/api/v1/jobs", json=video_body()).get_json()["id"]
    key = ProgressBus.snapshot_key(job_id)
    redis_progress.hdel(key, "status")

    read = client.get(f"/api/v1/jobs/{job_id}")
    assert read.status_code == 200
    assert read.headers["Retry-After"] == "2"
    body = read.get_json()
    assert body["id"] == job_id and body["status"] == "queued"
    again = client.get(f"/api/v1/jobs/{job_id}", headers={"If-None-Match": read.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""
    assert again.headers["Retry-After"] == "2"


def test_a_304_carries_the_200s_headers_and_follows_the_final_status(app: Flask) -> None:
    client = app.test_client()
    job_id = client.post("/api/v1/jobs", json=video_body(features=["summary"])).get_json()["id"]
    advance(bus_of(app), job_id, start("summary"))
    advance(bus_of(app), job_id, finish("summary"))

    full = client.get(f"/api/v1/jobs/{job_id}")
    assert full.get_json()["status"] == "succeeded"
    epoch = signer_of(app).epoch()
    assert full.headers["ETag"] == etag_for(job_id, full.get_json()["version"], epoch)
    # Final: nothing to poll for.
    assert "Retry-After" not in full.headers

    weak = client.get(
        f"/api/v1/jobs/{job_id}",
        headers={"If-None-Match": f'"other", W/{full.headers["ETag"]}'},
    )
    assert weak.status_code == 304 and weak.data == b""
    assert weak.headers["ETag"] == full.headers["ETag"]
    assert weak.headers["Cache-Control"] == "no-cache"
    assert "Retry-After" not in weak.headers
    stale = client.get(f"/api/v1/jobs/{job_id}", headers={"If-None-Match": '"other"'})
    assert stale.status_code == 200 and stale.get_json() == full.get_json()


def test_a_counted_read_still_counts_and_still_hides_other_keys_jobs(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(auth="required", key_cache_s=0, read_rate="3/min")
    client = app.test_client()
    owner, other = make_key("kiosk-1"), make_key("kiosk-2")
    job_id = client.post("/api/v1/jobs", json=video_body(), headers=bearer(owner)).get_json()["id"]

    remaining = []
    for _ in range(3):
        read = client.get(f"/api/v1/jobs/{job_id}", headers=bearer(owner))
        assert read.status_code == 200 and read.get_json()["id"] == job_id
        remaining.append(read.headers["RateLimit"].split(";")[1])
    assert remaining == ["r=2", "r=1", "r=0"]
    refused = client.get(f"/api/v1/jobs/{job_id}", headers=bearer(owner))
    assert refused.status_code == 429 and "Retry-After" in refused.headers
    # Another key's read of it: the same 404 as an unknown job, its snapshot unseen.
    hidden = client.get(f"/api/v1/jobs/{job_id}", headers=bearer(other))
    assert hidden.status_code == 404 and "features" not in hidden.get_json()


def test_a_read_after_redis_lost_the_snapshot_refills_it_from_the_database(
    app: Flask, redis_progress: redis.Redis[str]
) -> None:
    client = app.test_client()
    created = client.post("/api/v1/jobs", json=video_body()).get_json()
    redis_progress.delete(ProgressBus.snapshot_key(created["id"]))

    read = client.get(f"/api/v1/jobs/{created['id']}")

    assert read.status_code == 200 and read.get_json() == created
    assert redis_progress.hget(ProgressBus.snapshot_key(created["id"]), "status") == "queued"


def test_a_submission_commits_once_and_is_marked_sent(app: Flask) -> None:
    client = app.test_client()
    commits: list[Any] = []

    def counted(connection: Any) -> None:
        commits.append(connection)

    event.listen(get_engine(), "commit", counted)
    try:
        created = client.post("/api/v1/jobs", json=video_body())
    finally:
        event.remove(get_engine(), "commit", counted)

    assert created.status_code == 202
    assert len(commits) == 1
    job = load_job(created.get_json()["id"])
    assert job.enqueued_at is not None and job.enqueue_count == 1


def test_sign_json_signs_as_sign_urls_does() -> None:
    signer = Signer(b"secret", 3600, clock=lambda: 1_700_000_000.0)
    values: list[Any] = [
        {"image_url": "/api/v1/artifacts/a1", "artifact_id": "a1"},
        {"input": {"photo_url": "/api/v1/artifacts/p1?expires=1&sig=old"}},
        {"text": 'quoted "image_url": "/api/v1/artifacts/x" inside a string'},
        {'odd"image_url\\': "/api/v1/artifacts/not-a-field"},
        {"image_url": "https://elsewhere/api/v1/artifacts/x", "photo_url": None},
        {"list": [{"image_url": '/api/v1/artifacts/\u00e9\\"x'}], "image_url": 3},
        {"nothing": "to sign"},
    ]
    for value in values:
        text = json.dumps(value)
        assert signer.sign_json(text) == json.dumps(signer.sign_urls(value)), value
