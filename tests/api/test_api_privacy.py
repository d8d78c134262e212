"""Images are private by default: signed expiring URLs, erasure on request, retention."""

from __future__ import annotations

import dataclasses
import io
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update

from api.services import Services
from refract.core.db import session_scope
from refract.core.models import FeatureRun, Job, utcnow
from refract.imaging.storage import store_image
from refract.jobs.catalog import FeatureStatus
from refract.jobs.progress import ProgressBus
from tasks.retention import purge_once
from tasks.services import build_services
from tests.support.images import fixture_bytes
from tests.support.jobs import advance, media_files, table_counts
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
        assert client.get(job["links"]["events"], headers=bearer(who)).status_code == 404
        assert client.delete(job["links"]["self"], headers=bearer(who)).status_code == 404
    assert client.get(url).status_code == 404


def test_an_admin_may_delete_any_job(make_app: Callable[..., Flask], astronaut_png: bytes) -> None:
    client = make_app(auth="required", key_cache_s=0).test_client()
    job = photocard(client, astronaut_png, **bearer(make_key("booth-1")))
    admin = bearer(make_key("staff", "admin"))
    assert client.delete(job["links"]["self"], headers=admin).status_code == 204
    assert table_counts()["jobs"] == 0


def finish(services: Services, job_id: str) -> str:
    """Finish a photo card job as workers would: a caption, a failed portrait, and a card
    image stored in the media directory; the card's artifact id."""
    with session_scope() as session:
        card = store_image(
            session,
            services.store,
            job_id=uuid.UUID(job_id),
            role="card",
            data=fixture_bytes("coffee.png"),
            content_type="image/png",
        )
        card_id = str(card.id)

    def done(runs: dict[str, FeatureRun]) -> None:
        for run in runs.values():
            run.status, run.progress, run.finished_at = "succeeded", 1.0, utcnow()
            run.input_tokens, run.output_tokens = 100, 20
        runs["caption"].result = {"caption": "An astronaut smiles."}
        runs["stylize"].status = FeatureStatus.FAILED.value
        runs["stylize"].error_code, runs["stylize"].error_message = "model_timeout", "slow"
        runs["card"].result = {"artifact_id": card_id, "content_type": "image/png"}

    advance(services.bus, job_id, done)
    return card_id


def test_results_carry_signed_urls_and_redis_holds_none(
    make_app: Callable[..., Flask],
    astronaut_png: bytes,
    media_dir: Path,
    redis_progress: redis.Redis[str],
) -> None:
    app = make_app(auth="required", key_cache_s=0)
    client = app.test_client()
    key = bearer(make_key("kiosk"))
    job = photocard(client, astronaut_png, **key)
    card_id = finish(app.extensions["refract"], job["id"])

    first = client.get(job["links"]["self"], headers=key)
    again = client.get(job["links"]["self"], headers=key)
    listed = client.get("/api/v1/jobs", headers=key).get_json()["items"]

    # Polling gives the very same answer (URLs are stable within their period).
    assert first.data == again.data and first.headers["ETag"] == again.headers["ETag"]
    shown = first.get_json()
    assert listed == [shown]
    image_url = shown["features"]["card"]["result"]["image_url"]
    assert image_url.startswith(f"/api/v1/artifacts/{card_id}?expires=")
    assert "&sig=" in image_url
    card = client.get(image_url)  # no key: the URL is the credential
    assert card.status_code == 200 and card.data == fixture_bytes("coffee.png")
    assert card.headers["Cache-Control"].startswith("private, max-age=")
    assert card.headers["X-Content-Type-Options"] == "nosniff"
    # What workers publish (and Redis keeps) names images by path only: no capability.
    body = redis_progress.hget(ProgressBus.snapshot_key(job["id"]), "body")
    assert body is not None and f"/api/v1/artifacts/{card_id}" in body and "sig=" not in body
    for _id, fields in redis_progress.xrange(ProgressBus.stream_key(job["id"])):
        assert "sig=" not in fields["data"] and "/artifacts/" not in fields["data"]

    assert client.delete(job["links"]["self"], headers=key).status_code == 204
    assert client.get(image_url).status_code == 404
    assert media_files(media_dir) == []


def test_a_revalidating_client_gets_fresh_urls_once_they_are_re_signed(
    make_app: Callable[..., Flask], astronaut_png: bytes
) -> None:
    app = make_app(artifact_url_ttl_s=3600)
    client = app.test_client()
    services = app.extensions["refract"]
    now = [time.time()]
    services.signer = dataclasses.replace(services.signer, clock=lambda: now[0])
    job = photocard(client, astronaut_png)
    first = client.get(job["links"]["self"])
    etag, old_url = first.headers["ETag"], first.get_json()["input"]["photo_url"]
    assert client.get(job["links"]["self"], headers={"If-None-Match": etag}).status_code == 304

    now[0] += services.signer.step_s  # the next quarter of the TTL: URLs are re-signed

    fresh = client.get(job["links"]["self"], headers={"If-None-Match": etag})
    assert fresh.status_code == 200 and fresh.headers["ETag"] != etag
    new_url = fresh.get_json()["input"]["photo_url"]
    assert new_url != old_url
    assert client.get(new_url).status_code == 200
    assert client.get(old_url).status_code == 200  # still within its own hour
    now[0] = int(old_url.split("expires=")[1].split("&")[0])  # the old URL's last moment
    assert client.get(old_url).status_code == 404
    assert client.get(new_url).status_code == 200


def test_retention_erases_old_images_and_inputs_and_keeps_the_record(
    make_app: Callable[..., Flask], astronaut_png: bytes, media_dir: Path
) -> None:
    app = make_app(retention_s=3600)
    client = app.test_client()
    services = app.extensions["refract"]
    old = photocard(client, astronaut_png)
    card_id = finish(services, old["id"])
    recent = photocard(client, astronaut_png)
    finish(services, recent["id"])
    with session_scope() as session:
        session.execute(
            update(Job)
            .where(Job.id == uuid.UUID(old["id"]))
            .values(created_at=utcnow() - timedelta(hours=2))
        )
    before = client.get(old["links"]["self"]).get_json()
    photo_url = before["input"]["photo_url"]
    card_url = before["features"]["card"]["result"]["image_url"]
    recent_url = client.get(recent["links"]["self"]).get_json()["input"]["photo_url"]
    assert len(media_files(media_dir)) == 4

    worker = build_services(services.settings)
    try:
        assert purge_once(worker) == [old["id"]]
    finally:
        worker.heartbeats.stop()
        worker.youtube.close()
        worker.redis.close()

    for url in (photo_url, card_url):
        gone = client.get(url)
        assert gone.status_code == 410 and gone.mimetype == "application/problem+json"
    assert client.get(recent_url).status_code == 200
    assert len(media_files(media_dir)) == 2  # the recent job's photo and card
    after = client.get(old["links"]["self"]).get_json()
    assert after["purged_at"] is not None and before["purged_at"] is None
    assert after["input"]["prompt"] == "" and before["input"]["prompt"] == "stars"
    assert after["status"] == before["status"] == "partial"
    for name, feature in before["features"].items():
        kept = after["features"][name]
        assert (kept["status"], kept["usage"], kept["error"], kept["finished_at"]) == (
            feature["status"],
            feature["usage"],
            feature["error"],
            feature["finished_at"],
        )
    assert after["features"]["caption"]["result"] == {"caption": "An astronaut smiles."}
    # The card keeps its artifact id; its URL answers 410 like the photo's.
    assert after["features"]["card"]["result"]["artifact_id"] == card_id
    assert client.get(after["features"]["card"]["result"]["image_url"]).status_code == 410
