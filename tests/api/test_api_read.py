"""Reading jobs and artifacts: snapshot or database, ETag/304, Retry-After, pagination."""

from __future__ import annotations

import hashlib
import io
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from api.schemas import JobList
from refract.jobs.catalog import FeatureStatus
from refract.jobs.progress import ProgressBus
from refract.jobs.resource import JobResource, etag_for
from tests.support.bodies import inline_source, video_body
from tests.support.jobs import advance, finish, start


def bus_of(app: Flask) -> ProgressBus:
    """The app's progress bus."""
    bus: ProgressBus = app.extensions["refract"].bus
    return bus


def create(client: FlaskClient, **overrides: Any) -> dict[str, Any]:
    """Create a video job and return its resource."""
    response = client.post("/api/v1/jobs", json=video_body(**overrides))
    assert response.status_code == 202, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def test_get_job_etag_304_and_retry_after_follow_the_version(
    app: Flask, client: FlaskClient
) -> None:
    job_id = create(client)["id"]

    first = client.get(f"/api/v1/jobs/{job_id}")
    assert first.status_code == 200
    assert first.headers["Cache-Control"] == "no-cache"
    assert first.headers["Retry-After"] == "2"  # poll_after_s while not final
    etag = first.headers["ETag"]
    epoch = client.application.extensions["refract"].signer.epoch()
    assert etag == etag_for(job_id, first.get_json()["version"], epoch)

    unchanged = client.get(f"/api/v1/jobs/{job_id}", headers={"If-None-Match": etag})
    assert unchanged.status_code == 304
    assert unchanged.data == b""
    assert unchanged.headers["ETag"] == etag
    assert unchanged.headers["Retry-After"] == "2"

    advance(bus_of(app), job_id, start("summary"))
    changed = client.get(f"/api/v1/jobs/{job_id}", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag
    assert changed.get_json()["status"] == "running"
    assert changed.get_json()["features"]["summary"]["status"] == "running"

    advance(bus_of(app), job_id, finish("summary", "comments", "thumbnail"))
    final = client.get(f"/api/v1/jobs/{job_id}")
    assert final.get_json()["status"] == "succeeded"
    assert "Retry-After" not in final.headers
    again = client.get(f"/api/v1/jobs/{job_id}", headers={"If-None-Match": final.headers["ETag"]})
    assert again.status_code == 304 and "Retry-After" not in again.headers


def test_snapshot_and_database_give_the_same_resource(
    app: Flask, client: FlaskClient, redis_progress: redis.Redis[str]
) -> None:
    job_id = create(client)["id"]
    key = f"refract:job:{job_id}:snapshot"
    advance(bus_of(app), job_id, start("summary", "thumbnail"))
    advance(bus_of(app), job_id, finish("summary"))
    advance(bus_of(app), job_id, finish("thumbnail", status=FeatureStatus.BLOCKED))

    from_snapshot = client.get(f"/api/v1/jobs/{job_id}")
    assert redis_progress.delete(key) == 1
    from_database = client.get(f"/api/v1/jobs/{job_id}")

    assert from_database.get_json() == from_snapshot.get_json()
    assert from_database.headers["ETag"] == from_snapshot.headers["ETag"]
    JobResource.model_validate(from_database.get_json())
    resource = from_database.get_json()
    error = resource["features"]["thumbnail"]["error"]
    assert (error["code"], error["message"]) == ("model_timeout", "too slow")
    # An expected failure has no log reference (the resource may say null or leave it out).
    assert error.get("reference") is None
    # The database answer refilled the snapshot.
    assert redis_progress.hget(key, "version") == str(resource["version"])


def test_creation_snapshot_matches_the_database(
    client: FlaskClient, redis_progress: redis.Redis[str]
) -> None:
    job_id = create(client)["id"]
    from_snapshot = client.get(f"/api/v1/jobs/{job_id}").get_json()
    redis_progress.delete(f"refract:job:{job_id}:snapshot")

    assert client.get(f"/api/v1/jobs/{job_id}").get_json() == from_snapshot


def test_get_job_falls_back_to_the_database_when_redis_is_down(
    app: Flask, client: FlaskClient, redis_progress: redis.Redis[str]
) -> None:
    job_id = create(client)["id"]
    bus_of(app).client.connection_pool.connection_kwargs["port"] = 1  # a dead port
    bus_of(app).client.connection_pool.disconnect()

    response = client.get(f"/api/v1/jobs/{job_id}")

    assert response.status_code == 200
    assert response.get_json()["id"] == job_id


@pytest.mark.parametrize("job_id", [str(uuid.uuid4()), "not-a-uuid", "1"])
def test_unknown_or_malformed_job_id_is_404(client: FlaskClient, job_id: str) -> None:
    for path in (f"/api/v1/jobs/{job_id}", f"/api/v1/jobs/{job_id}/events"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.mimetype == "application/problem+json"
        assert response.get_json()["status"] == 404


def test_list_is_newest_first_with_cursor_pagination(app: Flask, client: FlaskClient) -> None:
    created = [create(client)["id"] for _ in range(5)]
    photo = client.post(
        "/api/v1/jobs",
        json={"kind": "video", "source": inline_source()},
    ).get_json()["id"]
    advance(bus_of(app), created[0], finish("summary", "comments", "thumbnail"))
    newest_first = [photo, *reversed(created)]

    seen: list[str] = []
    url: str | None = "/api/v1/jobs?limit=2"
    pages = 0
    while url:
        response = client.get(url)
        assert response.status_code == 200
        page = JobList.model_validate(response.get_json())
        seen += [item.id for item in page.items]
        pages += 1
        if page.next_cursor:
            link = response.headers["Link"]
            assert link.endswith('>; rel="next"')
            target = link[1 : link.index(">")]
            assert parse_qs(urlsplit(target).query)["cursor"] == [page.next_cursor]
            url = target
        else:
            assert "Link" not in response.headers
            url = None
    assert seen == newest_first
    assert pages == 3

    succeeded = client.get("/api/v1/jobs?status=succeeded").get_json()
    assert [item["id"] for item in succeeded["items"]] == [created[0]]
    assert succeeded["next_cursor"] is None
    videos = client.get("/api/v1/jobs?kind=video&limit=100").get_json()
    assert len(videos["items"]) == 6
    assert client.get("/api/v1/jobs?kind=photocard").get_json()["items"] == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=many", "limit"),
        ("status=done", "status"),
        ("kind=audio", "kind"),
        ("cursor=%21%21%21", "cursor"),
    ],
)
def test_list_refuses_bad_parameters(client: FlaskClient, query: str, field: str) -> None:
    response = client.get(f"/api/v1/jobs?{query}")

    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert field in [e["field"] for e in response.get_json()["errors"]]


def test_artifact_bytes_type_etag_and_caching(client: FlaskClient, astronaut_png: bytes) -> None:
    created = client.post(
        "/api/v1/jobs",
        data={"kind": "photocard", "photo": (io.BytesIO(astronaut_png), "a.png")},
    ).get_json()
    url = created["input"]["photo_url"]

    response = client.get(url)
    assert response.status_code == 200
    assert response.mimetype == "image/png"
    assert response.data[:8] == b"\x89PNG\r\n\x1a\n"
    assert response.headers["ETag"] == f'"{hashlib.sha256(response.data).hexdigest()}"'
    # Private (a venue proxy must not keep faces), for as long as the URL lasts at most.
    cache_control = response.headers["Cache-Control"]
    assert cache_control.startswith("private, max-age=")
    assert 0 < int(cache_control.rsplit("=", 1)[1]) <= 3600
    cached = client.get(url, headers={"If-None-Match": response.headers["ETag"]})
    assert cached.status_code == 304 and cached.data == b""

    for missing in (f"/api/v1/artifacts/{uuid.uuid4()}", "/api/v1/artifacts/nope"):
        gone = client.get(missing)
        assert gone.status_code == 404
        assert gone.mimetype == "application/problem+json"
