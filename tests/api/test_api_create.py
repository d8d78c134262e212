"""POST /api/v1/jobs: what is stored, what is published, what lands on the broker."""

from __future__ import annotations

import base64
import io
import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image

from api import submission
from refract.core.db import session_scope
from refract.core.models import Artifact, Job
from refract.jobs.resource import JobResource, etag_for
from refract.jobs.store import find_by_idempotency_key
from tests.support.bodies import CANONICAL_URL, inline_source, video_body
from tests.support.images import data_url, encode, small_image
from tests.support.jobs import load_job, media_files, table_counts
from tests.support.services import free_port


def broker_messages(broker: redis.Redis[bytes], queue: str) -> list[dict[str, Any]]:
    """The Celery messages waiting on ``queue``: task name, args and embedded options."""
    found = []
    for raw in broker.lrange(queue, 0, -1):
        message = json.loads(raw)
        args, _kwargs, embed = json.loads(base64.b64decode(message["body"]))
        found.append({"task": message["headers"]["task"], "args": args, "embed": embed})
    return found


def test_video_url_job_is_stored_published_and_enqueued_as_a_group(
    client: FlaskClient, redis_broker: redis.Redis[bytes], redis_progress: redis.Redis[str]
) -> None:
    response = client.post(
        "/api/v1/jobs", json=video_body(features=["thumbnail", "summary", "comments"])
    )

    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    JobResource.model_validate(body)
    job_id = body["id"]
    assert response.headers["Location"] == f"/api/v1/jobs/{job_id}"
    epoch = client.application.extensions["refract"].signer.epoch()
    assert response.headers["ETag"] == etag_for(job_id, body["version"], epoch)
    assert body["status"] == "queued"
    # Catalog order, whatever order the client listed them in.
    assert list(body["features"]) == ["summary", "comments", "thumbnail"]
    assert {f["status"] for f in body["features"].values()} == {"queued"}
    assert body["input"]["url"] == CANONICAL_URL
    assert body["input"]["video_id"] == "9bZkp7q19f0"

    job = load_job(job_id)
    assert job.input == {"url": CANONICAL_URL, "video_id": "9bZkp7q19f0"}
    assert job.enqueued_at is not None and job.enqueue_count == 1

    # One message per feature, on its queue, carrying only the job id; no chord.
    text = broker_messages(redis_broker, "text")
    image = broker_messages(redis_broker, "image")
    assert sorted(m["task"] for m in text) == ["refract.text.comments", "refract.text.summary"]
    assert [m["task"] for m in image] == ["refract.image.thumbnail"]
    for message in text + image:
        assert message["args"] == [job_id]
        assert message["embed"]["chord"] is None

    # The creation snapshot and the stream's opening event are in Redis.
    snapshot = json.loads(redis_progress.hget(f"refract:job:{job_id}:snapshot", "body") or "{}")
    assert snapshot["id"] == job_id and snapshot["version"] == body["version"]
    events = redis_progress.xrange(f"refract:job:{job_id}:events")
    assert [fields["type"] for _id, fields in events] == ["job"]
    assert json.loads(events[0][1]["data"])["final"] is False


def test_video_with_inline_source_stores_the_thumbnail_as_an_artifact(
    client: FlaskClient, media_dir: Path
) -> None:
    thumbnail = small_image("PNG", (120, 90))
    response = client.post(
        "/api/v1/jobs",
        json={"kind": "video", "source": inline_source(data_url(thumbnail)), "language": "ko"},
    )

    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    assert body["language"] == "ko"
    assert body["input"]["inline_source"] is True and body["input"]["title"] == "Gangnam Style"
    job = load_job(body["id"])
    source = job.input["source"]
    assert "thumbnail" not in source  # bytes live in media storage, not in the row
    assert source["transcript"][1] == {"start": 4.5, "text": "Gangnam style"}
    with session_scope() as session:
        artifact = session.get(Artifact, uuid.UUID(source["thumbnail_artifact_id"]))
        assert artifact is not None
        assert (artifact.role, artifact.job_id, artifact.content_type) == (
            "thumbnail",
            job.id,
            "image/png",
        )
        assert (artifact.width, artifact.height) == (120, 90)
    assert len(media_files(media_dir)) == 1


def test_photocard_stores_a_clean_photo_and_enqueues_a_chord(
    client: FlaskClient, redis_broker: redis.Redis[bytes], astronaut_png: bytes, media_dir: Path
) -> None:
    # Give the photo EXIF with GPS: it must not survive into storage.
    image = Image.open(io.BytesIO(astronaut_png)).convert("RGB")
    exif = Image.Exif()
    exif[0x010F] = "Camera Maker"
    jpeg = encode(image, "JPEG", exif=exif.tobytes(), quality=90)
    response = client.post(
        "/api/v1/jobs",
        data={
            "kind": "photocard",
            "prompt": "as an astronaut on Mars",
            "photo": (io.BytesIO(jpeg), "me.jpg", "image/jpeg"),
        },
        content_type="multipart/form-data",
    )

    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    JobResource.model_validate(body)
    assert list(body["features"]) == ["caption", "stylize", "card"]
    assert body["features"]["card"]["status"] == "waiting"
    assert body["input"]["prompt"] == "as an astronaut on Mars"

    job = load_job(body["id"])
    photo_id = job.input["photo_artifact_id"]
    # The row names the photo by id; its URL is made when the resource is built.
    assert job.input == {"prompt": "as an astronaut on Mars", "photo_artifact_id": photo_id}
    # Its URL is signed: it opens the photo without a key, for a while.
    assert body["input"]["photo_url"].startswith(f"/api/v1/artifacts/{photo_id}?expires=")
    assert client.get(f"/api/v1/artifacts/{photo_id}").status_code == 404
    stored = client.get(body["input"]["photo_url"])
    assert stored.status_code == 200 and stored.mimetype == "image/jpeg"
    reopened = Image.open(io.BytesIO(stored.data))
    assert reopened.size == (512, 512)
    assert not reopened.getexif()
    assert len(media_files(media_dir)) == 1

    # caption and stylize wait on the image queue; card is their chord callback and is on
    # no queue until both have finished.
    messages = broker_messages(redis_broker, "image")
    assert sorted(m["task"] for m in messages) == ["refract.image.caption", "refract.image.stylize"]
    for message in messages:
        assert message["args"] == [body["id"]]
        assert message["embed"]["chord"]["task"] == "refract.image.card"
        assert message["embed"]["chord"]["args"] == [body["id"]]
    assert redis_broker.llen("text") == 0


def test_photocard_feature_subset_from_a_comma_list(
    client: FlaskClient, redis_broker: redis.Redis[bytes], astronaut_png: bytes
) -> None:
    response = client.post(
        "/api/v1/jobs",
        data={
            "kind": "photocard",
            "features": "stylize, caption",
            "photo": (io.BytesIO(astronaut_png), "me.png"),
        },
    )

    assert response.status_code == 202, response.get_json()
    assert list(response.get_json()["features"]) == ["caption", "stylize"]
    messages = broker_messages(redis_broker, "image")
    assert len(messages) == 2 and all(m["embed"]["chord"] is None for m in messages)


def test_broker_down_still_creates_the_job_for_the_reconciler(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(broker_url=f"redis://127.0.0.1:{free_port()}/0")
    response = app.test_client().post("/api/v1/jobs", json=video_body())

    assert response.status_code == 202, response.get_json()
    job = load_job(response.get_json()["id"])
    assert job.status == "queued"
    assert job.enqueued_at is None and job.enqueue_count == 0
    assert len(job.features) == 3


def test_idempotency_key_replays_the_same_job_and_refuses_another_body(
    client: FlaskClient, redis_broker: redis.Redis[bytes]
) -> None:
    headers = {"Idempotency-Key": "booth-7-visitor-42"}
    first = client.post("/api/v1/jobs", json=video_body(), headers=headers)
    # Same video through another link form: the same request.
    again = client.post(
        "/api/v1/jobs",
        json=video_body(url="https://www.youtube.com/watch?v=9bZkp7q19f0&feature=share"),
        headers=headers,
    )
    other = client.post("/api/v1/jobs", json=video_body(language="ko"), headers=headers)

    assert first.status_code == 202
    assert again.status_code == 200
    assert again.get_json()["id"] == first.get_json()["id"]
    assert again.headers["Location"] == first.headers["Location"]
    assert other.status_code == 409
    assert other.mimetype == "application/problem+json"
    assert other.get_json()["status"] == 409
    assert table_counts()["jobs"] == 1
    assert redis_broker.llen("text") == 2  # enqueued once only


def test_photocard_idempotency_covers_the_photo(client: FlaskClient, astronaut_png: bytes) -> None:
    def post(photo: bytes) -> Any:
        return client.post(
            "/api/v1/jobs",
            data={"kind": "photocard", "photo": (io.BytesIO(photo), "p.png")},
            headers={"Idempotency-Key": "card-1"},
        )

    first, again = post(astronaut_png), post(astronaut_png)
    different = post(small_image("PNG"))

    assert (first.status_code, again.status_code, different.status_code) == (202, 200, 409)
    assert first.get_json()["id"] == again.get_json()["id"]
    with session_scope() as session:
        assert session.query(Job).count() == 1
        assert session.query(Artifact).count() == 1


def test_idempotency_insert_race_answers_with_the_winner(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = {"Idempotency-Key": "raced"}
    winner = client.post("/api/v1/jobs", json=video_body(), headers=headers)
    assert winner.status_code == 202

    # The loser looked the key up just before the winner committed: it saw nothing.
    real_lookup = find_by_idempotency_key
    calls: list[str] = []

    def late_lookup(session: Any, owner: Any, key: str, request_hash: str | None) -> Job | None:
        calls.append(key)
        return None if len(calls) == 1 else real_lookup(session, owner, key, request_hash)

    monkeypatch.setattr(submission, "find_by_idempotency_key", late_lookup)
    loser = client.post("/api/v1/jobs", json=video_body(), headers=headers)
    conflicting = client.post("/api/v1/jobs", json=video_body(language="ko"), headers=headers)

    assert loser.status_code == 200
    assert loser.get_json()["id"] == winner.get_json()["id"]
    assert conflicting.status_code == 409
    assert table_counts()["jobs"] == 1
