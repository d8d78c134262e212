"""Both job kinds end to end through the HTTP API, on real workers, with the Gemini path
through the real SDK against the fake Gemini: results, usage, events, failure modes."""

from __future__ import annotations

import base64
import io
import json
import socket
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from PIL import Image
from sqlalchemy import text
from sqlalchemy.engine import Engine

from launch.client import events as read_events
from refract.gateway.prompts import load_prompt
from tests.support.bodies import make_source
from tests.support.fakes.gemini import FakeGemini, Reply
from tests.support.images import fixture_bytes
from tests.support.stack import RefractStack, feature_rows, wait_for_job, wait_for_log

pytestmark = pytest.mark.integration


def requests_containing(fake: FakeGemini, marker: str) -> list[Any]:
    """The requests the fake got whose body mentions ``marker``."""
    return [r for r in fake.requests if marker.encode() in r.raw]


def test_video_job_runs_every_feature_and_stores_results(
    client: httpx.Client, db: Engine, fake_gemini: FakeGemini, submit_video: Any
) -> None:
    created = submit_video(make_source("plain-run"), language="en")
    assert set(created["features"]) == {"summary", "comments", "thumbnail"}
    job = wait_for_job(client, created["id"])
    assert job["status"] == "succeeded", job
    for name, feature in job["features"].items():
        assert feature["status"] == "succeeded", (name, feature)
        assert feature["backend"] == "gemini"
        assert feature["usage"]["input_tokens"] > 0
        assert feature["usage"]["output_tokens"] > 0
        assert feature["attempts"] == 1
    assert job["features"]["summary"]["result"]["tldr"]
    assert job["features"]["comments"]["result"]["comment_count"] == 3

    rows = feature_rows(db, created["id"])
    assert set(rows) == {"summary", "comments", "thumbnail"}
    for feature, row in rows.items():
        assert row["status"] == "succeeded"
        assert row["result"] and row["input_tokens"] > 0 and row["output_tokens"] > 0
        assert row["model"] == "gemini-2.5-flash"
        assert row["prompt_version"] == load_prompt(feature).version
        assert row["started_at"] <= row["finished_at"]

    # What Gemini was sent: the transcript for summary, the comments as data, the image.
    summary_requests = requests_containing(fake_gemini, "plain-run")
    assert len(summary_requests) == 1
    comment_requests = [r for r in fake_gemini.requests if b"What grinder do you use?" in r.raw]
    assert comment_requests, "comments were not sent to the model"
    assert any(r.images for r in fake_gemini.requests if b"Brewing better coffee" in r.raw)


def test_poll_with_etag_answers_304_and_snapshot_matches_database(
    client: httpx.Client, submit_video: Any
) -> None:
    created = submit_video(make_source("etag-run"))
    job = wait_for_job(client, created["id"])
    response = client.get(f"/api/v1/jobs/{job['id']}")
    etag = response.headers["etag"]
    assert "retry-after" not in response.headers
    again = client.get(f"/api/v1/jobs/{job['id']}", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""


def test_event_stream_shows_each_feature_and_resumes(
    client: httpx.Client, submit_video: Any
) -> None:
    created = submit_video(make_source("events-run"))
    events = list(read_events(client, created["id"]))
    last_id, last_type, last_data = events[-1]
    assert last_type == "job" and last_data["final"] is True
    assert last_data["status"] == "succeeded"
    by_feature: dict[str, list[float]] = {}
    for _id, event_type, data in events:
        if event_type == "feature":
            by_feature.setdefault(data["feature"], []).append(data["progress"])
    assert set(by_feature) == {"summary", "comments", "thumbnail"}
    for progress in by_feature.values():
        assert progress[-1] == 1.0 and len(progress) >= 3  # started, a step, finished
        assert progress == sorted(progress)
    ids = [event_id for event_id, _type, _data in events]
    assert len(set(ids)) == len(ids) and last_id == ids[-1]

    # Resuming after the third event replays exactly what came after it.
    resumed = list(read_events(client, created["id"], last_event_id=ids[2]))
    assert [event_id for event_id, _type, _data in resumed] == ids[3:]


def test_photocard_job_makes_caption_portrait_and_card(
    client: httpx.Client, db: Engine, fake_gemini: FakeGemini
) -> None:
    photo = fixture_bytes("astronaut.png")
    response = client.post(
        "/api/v1/jobs",
        data={"kind": "photocard", "prompt": "a space-themed poster"},
        files={"photo": ("me.png", photo, "image/png")},
    )
    assert response.status_code == 202, response.text
    assert response.headers["location"] == f"/api/v1/jobs/{response.json()['id']}"
    created = response.json()
    assert created["features"]["card"]["status"] == "waiting"

    job = wait_for_job(client, created["id"])
    assert job["status"] == "succeeded", job
    for name in ("stylize", "card"):
        result = job["features"][name]["result"]
        image = client.get(result["image_url"])
        assert image.status_code == 200
        assert image.headers["content-type"] == "image/png"
        decoded = Image.open(io.BytesIO(image.content))
        assert decoded.size == (result["width"], result["height"])
    assert job["features"]["caption"]["result"]["caption"]

    # The card ran after both inputs, and its request carried the prompt and the caption.
    rows = feature_rows(db, created["id"])
    assert rows["card"]["started_at"] >= rows["caption"]["finished_at"]
    assert rows["card"]["started_at"] >= rows["stylize"]["finished_at"]
    card_requests = [r for r in fake_gemini.requests if b"a space-themed poster" in r.raw]
    assert len(card_requests) == 1
    assert job["features"]["caption"]["result"]["caption"] in card_requests[0].raw.decode()
    with db.connect() as conn:
        roles = {
            row[0]
            for row in conn.execute(
                text("SELECT role FROM artifacts WHERE job_id = :id"), {"id": created["id"]}
            )
        }
    assert roles == {"photo", "stylize", "card"}


def test_photo_with_nobody_in_it_still_ends_with_a_card_from_the_photo(
    client: httpx.Client, fake_gemini: FakeGemini
) -> None:
    photo = fixture_bytes("coffee.png")
    response = client.post(
        "/api/v1/jobs",
        data={"kind": "photocard", "prompt": "nobody-card"},
        files={"photo": ("coffee.png", photo, "image/png")},
    )
    assert response.status_code == 202, response.text
    job = wait_for_job(client, response.json()["id"])
    features = job["features"]
    assert features["caption"]["status"] == "succeeded"
    assert features["stylize"]["status"] == "failed"
    assert features["stylize"]["error"]["code"] == "no_face_detected"
    # The visitor still leaves with a card, made from their photo with its own prompt.
    card = features["card"]
    assert card["status"] == "succeeded", card
    assert card["result"]["portrait"] == "photo" and card["result"]["image_url"]
    assert job["status"] == "partial"
    [request] = [r for r in fake_gemini.requests if b"nobody-card" in r.raw]
    assert b"Make a finished photo card from the attached photo" in request.raw


def test_photo_without_a_usable_face_sends_the_whole_photo_to_gemini(
    client: httpx.Client, db: Engine, fake_gemini: FakeGemini
) -> None:
    photo = fixture_bytes("profile.png")
    response = client.post(
        "/api/v1/jobs",
        data={"kind": "photocard", "prompt": "profile-card", "language": "ko"},
        files={"photo": ("profile.png", photo, "image/png")},
    )
    assert response.status_code == 202, response.text
    job = wait_for_job(client, response.json()["id"])
    assert job["status"] == "succeeded", job
    stylized = job["features"]["stylize"]["result"]
    assert (stylized["subject"], stylized["people"]) == ("person", 1)
    assert "카메라" in stylized["message"]  # the visitor's sentence, in the job's language
    rows = feature_rows(db, job["id"])
    assert rows["stylize"]["prompt_version"] == "stylize_photo.v1"
    whole = [r for r in fake_gemini.requests if b"whole picture a visitor took" in r.raw]
    assert len(whole) == 1
    # The whole photo went in (its full size), not a crop of it.
    [(_, sent)] = whole[0].images
    assert Image.open(io.BytesIO(sent)).size == Image.open(io.BytesIO(photo)).size


def test_rate_limit_waits_for_retry_info_then_succeeds(
    client: httpx.Client, db: Engine, fake_gemini: FakeGemini, submit_video: Any
) -> None:
    marker = f"ratelimited-{uuid.uuid4().hex[:6]}"
    fake_gemini.script(marker, Reply.rate_limited(retry_delay="1s"))
    job = wait_for_job(client, submit_video(make_source(marker))["id"])
    assert job["features"]["summary"]["status"] == "succeeded"
    calls = requests_containing(fake_gemini, marker)
    assert len(calls) == 2
    assert calls[1].received_at - calls[0].received_at >= 0.95


def test_server_error_then_success(
    client: httpx.Client, fake_gemini: FakeGemini, submit_video: Any
) -> None:
    marker = f"flaky-{uuid.uuid4().hex[:6]}"
    fake_gemini.script(marker, Reply.server_error(500))
    job = wait_for_job(client, submit_video(make_source(marker))["id"])
    assert job["features"]["summary"]["status"] == "succeeded"
    assert len(requests_containing(fake_gemini, marker)) == 2


def test_model_hang_beyond_timeout_fails_with_model_timeout(
    client: httpx.Client, db: Engine, fake_gemini: FakeGemini, submit_video: Any
) -> None:
    marker = f"hang-{uuid.uuid4().hex[:6]}"
    fake_gemini.script(marker, *[Reply.hang(4)] * 3)
    created = submit_video(make_source(marker))
    job = wait_for_job(client, created["id"], timeout_s=90)
    summary = job["features"]["summary"]
    assert summary["status"] == "failed"
    assert summary["error"]["code"] == "model_timeout"
    assert len(requests_containing(fake_gemini, marker)) == 3
    # The other features were not held up by the hanging one.
    assert job["features"]["comments"]["status"] == "succeeded"
    assert job["status"] == "partial"
    assert feature_rows(db, created["id"])["summary"]["error_code"] == "model_timeout"


def test_safety_block_is_a_feature_status(
    client: httpx.Client, db: Engine, fake_gemini: FakeGemini, submit_video: Any
) -> None:
    marker = f"blocked-{uuid.uuid4().hex[:6]}"
    fake_gemini.script(marker, Reply.prompt_blocked("SAFETY"))
    created = submit_video(make_source(marker))
    job = wait_for_job(client, created["id"])
    summary = job["features"]["summary"]
    assert summary["status"] == "blocked"
    assert summary["error"]["code"] == "safety_block"
    assert len(requests_containing(fake_gemini, marker)) == 1  # never retried
    assert job["status"] == "partial"
    row = feature_rows(db, created["id"])["summary"]
    assert row["status"] == "blocked" and row["result"] is None
    # The refused call was still billed: its usage is kept.
    assert row["input_tokens"] > 0 and row["model"] == "gemini-2.5-flash"


def test_invalid_json_is_asked_for_again_then_fails_with_invalid_model_output(
    client: httpx.Client, db: Engine, fake_gemini: FakeGemini, submit_video: Any
) -> None:
    once = f"badjson-once-{uuid.uuid4().hex[:6]}"
    fake_gemini.script(once, Reply.text('{"tldr": "cut off'))
    job = wait_for_job(client, submit_video(make_source(once))["id"])
    assert job["features"]["summary"]["status"] == "succeeded"
    assert len(requests_containing(fake_gemini, once)) == 2

    twice = f"badjson-twice-{uuid.uuid4().hex[:6]}"
    fake_gemini.script(twice, Reply.text('{"tldr": "cut off'), Reply.text("no JSON here"))
    created = submit_video(make_source(twice))
    job = wait_for_job(client, created["id"])
    summary = job["features"]["summary"]
    assert summary["status"] == "failed"
    assert summary["error"]["code"] == "invalid_model_output"
    assert summary["result"] is None
    assert len(requests_containing(fake_gemini, twice)) == 2
    row = feature_rows(db, created["id"])["summary"]
    assert row["error_code"] == "invalid_model_output"
    assert row["input_tokens"] > 0  # both rejected answers were paid for


def test_a_tiny_image_from_the_model_is_still_its_answer(
    client: httpx.Client, fake_gemini: FakeGemini
) -> None:
    # Image models choose their output size; a 1x1 PNG is odd but valid (uploads, not
    # answers, have a minimum size).
    pixel = io.BytesIO()
    Image.new("RGB", (1, 1), (200, 100, 50)).save(pixel, format="PNG")
    answer = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {
                            "inlineData": {
                                "mimeType": "image/png",
                                "data": base64.b64encode(pixel.getvalue()).decode(),
                            }
                        }
                    ],
                },
                "finishReason": "STOP",
            }
        ],
        "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5},
    }
    fake_gemini.script("character artist", Reply(body=answer))
    response = client.post(
        "/api/v1/jobs",
        data={"kind": "photocard", "features": "caption,stylize"},
        files={"photo": ("me.png", fixture_bytes("astronaut.png"), "image/png")},
    )
    assert response.status_code == 202, response.text
    job = wait_for_job(client, response.json()["id"])
    stylize = job["features"]["stylize"]
    assert stylize["status"] == "succeeded", stylize
    assert (stylize["result"]["width"], stylize["result"]["height"]) == (1, 1)
    assert set(job["features"]) == {"caption", "stylize"}


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /api/v1/jobs?x=" + b"a" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414),
        (b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n", 431),
        (b"GET /healthz HTTP/9.9\r\nHost: t\r\n\r\n", 400),
    ],
    ids=["uri-too-long", "header-too-large", "bad-version"],
)
def test_gunicorns_own_errors_are_problem_json(
    stack: RefractStack, request_bytes: bytes, status: int
) -> None:
    address = urlsplit(stack.url)
    assert address.hostname and address.port
    with socket.create_connection((address.hostname, address.port), timeout=10) as conn:
        conn.sendall(request_bytes)
        raw = b""
        while chunk := conn.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.split(b" ")[1] == str(status).encode(), head
    assert b"Content-Type: application/problem+json" in head
    problem = json.loads(body)
    assert problem["status"] == status and problem["detail"] and "<html" not in body.decode()


def test_stalled_clients_hold_no_thread(stack: RefractStack, client: httpx.Client) -> None:
    # 64 connections that never finish their request (the API has 2 x 16 threads), half
    # stuck in their headers, half announcing a body they never send.
    job = client.post("/api/v1/jobs", json={"kind": "video", "source": make_source("SLOW")}).json()
    address = urlsplit(stack.url)
    assert address.hostname and address.port
    stalled: list[socket.socket] = []
    try:
        for index in range(64):
            conn = socket.create_connection((address.hostname, address.port), timeout=5)
            if index % 2:
                conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: ")
            else:
                head = b"POST /api/v1/jobs HTTP/1.1\r\nHost: t\r\nContent-Type: application/json"
                conn.sendall(head + b"\r\nContent-Length: 5000\r\n\r\n{")
            stalled.append(conn)
        time.sleep(0.5)  # every stalled request has reached the server

        worst = 0.0
        for _ in range(10):
            for path in ("/healthz", f"/api/v1/jobs/{job['id']}"):
                started = time.monotonic()
                answer = client.get(path, timeout=10)
                worst = max(worst, time.monotonic() - started)
                assert answer.status_code == 200, path
        print(f"slowest of 20 answers beside 64 stalled connections: {worst * 1000:.1f} ms")
        # Generous for a loaded CI machine; starved threads would take seconds or time out.
        assert worst < 2.0, f"slowest answer took {worst:.2f}s"
    finally:
        for conn in stalled:
            conn.close()


def test_the_worker_is_warm_before_its_first_task(stack: RefractStack) -> None:
    # Its services (the model SDK's client, the first database and Redis connections)
    # are built when it starts, not by the first visitor's task.
    wait_for_log(stack, "worker_warmed_up")
    assert "worker_warm_up_failed" not in stack.logs()
