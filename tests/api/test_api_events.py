"""GET /api/v1/jobs/<id>/events: replay, resume with Last-Event-ID, live follow, the end."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import BaseWSGIServer, make_server

from refract.core.db import get_engine
from refract.jobs.progress import ProgressBus
from tests.support.bodies import video_body
from tests.support.jobs import advance, finish, start
from tests.support.services import free_port
from tests.support.sse import SseFrame, parse_sse


def bus_of(app: Flask) -> ProgressBus:
    """The app's progress bus."""
    bus: ProgressBus = app.extensions["refract"].bus
    return bus


def run_to_the_end(app: Flask, client: FlaskClient) -> str:
    """A video job taken through start and finish, as workers would; its id."""
    job_id: str = client.post("/api/v1/jobs", json=video_body()).get_json()["id"]
    advance(bus_of(app), job_id, start("summary", "comments"))
    advance(bus_of(app), job_id, finish("summary"))
    advance(bus_of(app), job_id, start("thumbnail"))
    advance(bus_of(app), job_id, finish("comments", "thumbnail"))
    return job_id


def events(client: FlaskClient, job_id: str, **headers: str) -> tuple[list[SseFrame], list[str]]:
    """The whole event stream of a job (it must end by itself)."""
    response = client.get(f"/api/v1/jobs/{job_id}/events", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Accel-Buffering"] == "no"
    return parse_sse(response.get_data(as_text=True))


def stream_order(event_id: str | None) -> tuple[int, int]:
    assert event_id is not None
    millis, _, seq = event_id.partition("-")
    return int(millis), int(seq)


def test_replay_from_the_start_ends_after_the_final_job_event(
    app: Flask, client: FlaskClient
) -> None:
    job_id = run_to_the_end(app, client)

    frames, _comments = events(client, job_id)

    assert [f.event for f in frames] == [
        "job",  # created (queued)
        "feature",
        "feature",
        "job",  # summary, comments running; job running
        "feature",  # summary succeeded
        "feature",  # thumbnail running
        "feature",
        "feature",
        "job",  # comments, thumbnail succeeded; job final
    ]
    assert frames[0].data["status"] == "queued" and frames[0].data["final"] is False
    assert frames[-1].data == {
        "job_id": job_id,
        "status": "succeeded",
        "progress": 1.0,
        "final": True,
        "features": {
            name: {"status": "succeeded", "progress": 1.0}
            for name in ("summary", "comments", "thumbnail")
        },
    }
    assert all(f.data["job_id"] == job_id for f in frames)
    orders = [stream_order(f.id) for f in frames]
    assert orders == sorted(orders) and len(set(orders)) == len(orders)


def test_resume_after_last_event_id_misses_nothing_and_repeats_nothing(
    app: Flask, client: FlaskClient
) -> None:
    job_id = run_to_the_end(app, client)
    everything, _ = events(client, job_id)

    by_header, _ = events(client, job_id, **{"Last-Event-ID": str(everything[3].id)})
    by_query = client.get(f"/api/v1/jobs/{job_id}/events?last_event_id={everything[5].id}")

    assert by_header == everything[4:]
    assert parse_sse(by_query.get_data(as_text=True))[0] == everything[6:]


def test_a_client_that_saw_the_final_event_gets_204(app: Flask, client: FlaskClient) -> None:
    job_id = run_to_the_end(app, client)
    everything, _ = events(client, job_id)

    again = client.get(
        f"/api/v1/jobs/{job_id}/events", headers={"Last-Event-ID": str(everything[-1].id)}
    )

    assert again.status_code == 204 and again.data == b""


def test_finished_job_whose_stream_was_lost_is_told_from_the_database(
    app: Flask, client: FlaskClient, redis_progress: redis.Redis[str]
) -> None:
    job_id = run_to_the_end(app, client)
    redis_progress.flushdb()

    frames, _ = events(client, job_id)

    assert [f.id for f in frames] == ["0-1", "0-2", "0-3", "0-4"]
    assert [(f.event, f.data.get("feature")) for f in frames] == [
        ("feature", "summary"),
        ("feature", "comments"),
        ("feature", "thumbnail"),
        ("job", None),
    ]
    assert all(f.data["status"] == "succeeded" for f in frames)
    assert frames[-1].data["final"] is True
    reconnect = client.get(f"/api/v1/jobs/{job_id}/events", headers={"Last-Event-ID": "0-4"})
    assert reconnect.status_code == 204


def test_unfinished_job_stream_keeps_alive_and_closes_after_the_time_limit(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(sse_max_duration_s=1.0)
    client = app.test_client()
    job_id = client.post("/api/v1/jobs", json=video_body()).get_json()["id"]

    frames, comments = events(client, job_id)

    assert [f.event for f in frames] == ["job"]
    assert frames[0].data["final"] is False
    assert comments and set(comments) == {"keep-alive"}


def test_malformed_last_event_id_is_422(app: Flask, client: FlaskClient) -> None:
    job_id = client.post("/api/v1/jobs", json=video_body()).get_json()["id"]

    response = client.get(f"/api/v1/jobs/{job_id}/events", headers={"Last-Event-ID": "$"})

    assert response.status_code == 422
    assert response.get_json()["errors"][0]["field"] == "Last-Event-ID"


@pytest.fixture
def server(app: Flask) -> Iterator[str]:
    """The app served over real HTTP on 127.0.0.1, one thread per request."""
    port = free_port()
    httpd: BaseWSGIServer = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    httpd.shutdown()
    thread.join(timeout=10)


def test_live_events_arrive_as_they_happen_over_http(app: Flask, server: str) -> None:
    with httpx.Client(base_url=server, timeout=30) as http:
        job_id = http.post("/api/v1/jobs", json=video_body()).json()["id"]
        received: queue.Queue[Any] = queue.Queue()

        def listen() -> None:
            with http.stream("GET", f"/api/v1/jobs/{job_id}/events") as response:
                received.put(response.headers.get("content-type"))
                buffer = ""
                for chunk in response.iter_text():
                    buffer += chunk
                    while "\n\n" in buffer:
                        block, buffer = buffer.split("\n\n", 1)
                        frames, _ = parse_sse(block + "\n\n")
                        for frame in frames:
                            received.put(frame)
            received.put(None)  # the server closed the stream

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        assert received.get(timeout=10).startswith("text/event-stream")
        opening = received.get(timeout=10)
        assert (opening.event, opening.data["status"]) == ("job", "queued")
        # While the stream is open, it holds no database connection.
        assert get_engine().pool.checkedout() == 0  # type: ignore[attr-defined]

        advance(bus_of(app), job_id, start("summary"))
        live = [received.get(timeout=10), received.get(timeout=10)]
        assert [(f.event, f.data["status"]) for f in live] == [
            ("feature", "running"),
            ("job", "running"),
        ]

        advance(bus_of(app), job_id, finish("summary", "comments", "thumbnail"))
        rest = []
        while (item := received.get(timeout=10)) is not None:
            rest.append(item)
        assert rest[-1].event == "job" and rest[-1].data["final"] is True
        listener.join(timeout=10)
        assert not listener.is_alive()
