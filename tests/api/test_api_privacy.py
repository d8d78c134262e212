"""Images are private by default: signed expiring URLs, erasure on request, retention."""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from flask import Flask
from flask.testing import FlaskClient

from refract.core.db import session_scope
from refract.imaging.storage import MediaStore
from refract.jobs.erasure import purge_job
from refract.jobs.progress import ProgressBus
from tests.support.jobs import media_files, table_counts
from tests.support.keys import bearer, make_key


def photocard(client: FlaskClient, photo: bytes, **headers: str) -> dict[str, Any]:
    response = client.post(
        "/api/v1/jobs",
        data={"kind": "photocard", "photo": (io.BytesIO(photo), "me.png"), "prompt": "stars"},
        headers=headers,
    )
    assert response.status_code == 202, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def test_a_signed_url_opens_the_image_without_a_key_and_nothing_else_does(
    make_app: Callable[..., Flask], astronaut_png: bytes
) -> None:
    client = make_app(auth="required", key_cache_s=0).test_client()
    url = photocard(client, astronaut_png, **bearer(make_key("kiosk")))["input"]["photo_url"]
    path, query = url.split("?")

    shown = client.get(url)  # an <img> tag sends no Authorization header
    assert shown.status_code == 200 and shown.mimetype == "image/png"
    assert shown.headers["Cache-Control"].startswith("private, ")
    assert "public" not in shown.headers["Cache-Control"]

    expires = query.split("&")[0].split("=")[1]
    tampered = [
        path,  # unsigned
        url.replace(f"expires={expires}", f"expires={int(expires) + 3600}"),
        url[:-1] + ("0" if url[-1] != "0" else "1"),
        url.replace(path.rsplit("/", 1)[1], str(uuid.uuid4())),
    ]
    for bad in tampered:
        refused = client.get(bad)
        assert refused.status_code == 404, bad
        assert refused.mimetype == "application/problem+json"


def test_an_expired_url_is_refused(make_app: Callable[..., Flask], astronaut_png: bytes) -> None:
    app = make_app()
    client = app.test_client()
    photo_id = photocard(client, astronaut_png)["input"]["photo_url"].split("/")[-1].split("?")[0]
    signer = app.extensions["refract"].signer
    long_ago = time.time() - 2 * signer.ttl_s

    assert client.get(signer.sign(photo_id, long_ago)).status_code == 404
    assert client.get(signer.sign(photo_id)).status_code == 200


def test_delete_erases_the_job_its_files_and_its_redis_keys(
    make_app: Callable[..., Flask],
    astronaut_png: bytes,
    media_dir: Path,
    redis_progress: redis.Redis[str],
) -> None:
    client = make_app(auth="required", key_cache_s=0).test_client()
    owner, other, admin = make_key("booth-1"), make_key("booth-2"), make_key("staff", "admin")
    job = photocard(client, astronaut_png, **bearer(owner))
    url = job["input"]["photo_url"]
    assert media_files(media_dir) and client.get(url).status_code == 200
    assert redis_progress.exists(ProgressBus.snapshot_key(job["id"]))

    # Someone else's DELETE is told the job does not exist, and changes nothing.
    assert client.delete(job["links"]["self"], headers=bearer(other)).status_code == 404
    assert table_counts()["jobs"] == 1

    erased = client.delete(job["links"]["self"], headers=bearer(owner))

    assert erased.status_code == 204 and erased.data == b""
    assert table_counts() == {"jobs": 0, "feature_runs": 0, "artifacts": 0}
    assert media_files(media_dir) == []
    assert not redis_progress.exists(ProgressBus.snapshot_key(job["id"]))
    assert not redis_progress.exists(ProgressBus.stream_key(job["id"]))
    for who in (owner, admin):
        assert client.get(job["links"]["self"], headers=bearer(who)).status_code == 404
    assert client.get(url).status_code == 404
    assert client.delete(job["links"]["self"], headers=bearer(owner)).status_code == 404


def test_an_admin_may_delete_any_job(make_app: Callable[..., Flask], astronaut_png: bytes) -> None:
    client = make_app(auth="required", key_cache_s=0).test_client()
    job = photocard(client, astronaut_png, **bearer(make_key("booth-1")))
    admin = bearer(make_key("staff", "admin"))
    assert client.delete(job["links"]["self"], headers=admin).status_code == 204
    assert table_counts()["jobs"] == 0


def test_images_past_retention_answer_410_and_the_job_keeps_its_statuses(
    make_app: Callable[..., Flask], astronaut_png: bytes, media_dir: Path
) -> None:
    app = make_app()
    client = app.test_client()
    job = photocard(client, astronaut_png)
    url = job["input"]["photo_url"]
    services = app.extensions["refract"]

    with session_scope() as session:
        remove_files = purge_job(
            session, MediaStore(media_dir).delete, services.bus, uuid.UUID(job["id"])
        )
    remove_files()

    gone = client.get(url)
    assert gone.status_code == 410 and gone.mimetype == "application/problem+json"
    assert media_files(media_dir) == []
    after = client.get(job["links"]["self"]).get_json()
    assert after["status"] == job["status"] and after["input"]["prompt"] == ""
