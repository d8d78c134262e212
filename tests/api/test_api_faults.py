"""Honest errors: a dependency that is down is a 503 with Retry-After, a bug a generic 500;
every problem carries a reference (the request's id), a 5xx a stable code, and the text of
the exception behind it only ever reaches the log.

The outages are real: the database or Redis is given as a closed port on 127.0.0.1, which
refuses a connection at once, so nothing here waits for a timeout.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg.errors
import pytest
import redis
import structlog
from flask import Flask
from kombu.exceptions import OperationalError as BrokerOperationalError
from sqlalchemy.exc import OperationalError, ProgrammingError
from structlog.typing import EventDict
from werkzeug.test import TestResponse

from api.schemas import NotReadyProblem, Problem
from api.services import Services
from api.views.health import failure_reason
from refract.core.db import init_engine
from refract.core.settings import Settings
from refract.jobs.catalog import ALL_QUEUES
from tests.support.bodies import video_body
from tests.support.images import fixture_bytes
from tests.support.jobs import advance, finish, load_job, media_files, table_counts
from tests.support.services import free_port
from tests.support.sse import parse_sse

REQUEST_ID = "booth-7-request-42"
SECRET = "s3cret-host.internal:6543 password=hunter2"
# What must never reach a client: driver names, exception types, where things run.
LEAKS = ("127.0.0.1", "psycopg", "OperationalError", "ConnectionError", "Traceback", "Errno")


def dead_url(scheme: str) -> tuple[str, int]:
    """A URL of ``scheme`` on a local port nothing listens on, and that port."""
    port = free_port()
    if scheme == "postgresql":
        return f"postgresql+psycopg://postgres@127.0.0.1:{port}/refract", port
    return f"redis://127.0.0.1:{port}/0", port


@pytest.fixture
def without_database(
    make_app: Callable[..., Flask], make_settings: Callable[..., Settings]
) -> Iterator[tuple[Callable[..., Flask], int]]:
    """Build apps whose database is a closed port (and the port, to look for leaks)."""
    url, port = dead_url("postgresql")

    def build(**overrides: Any) -> Flask:
        return make_app(database_url=url, **overrides)

    yield build, port
    # The engine is per process: give make_app's clean-up the test database back.
    init_engine(make_settings())


def assert_honest_problem(
    response: TestResponse, status: int, code: str | None, *, secrets: tuple[str, ...] = ()
) -> dict[str, Any]:
    """``response`` is a problem+json of ``status`` and ``code``, whose reference is the
    request's id, and which says nothing of the exception behind it."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    problem: dict[str, Any] = response.get_json()
    assert problem["status"] == status
    assert problem.get("code") == code
    assert problem["reference"] == response.headers["X-Request-ID"]
    assert problem["title"] and problem["detail"]
    text = response.get_data(as_text=True)
    for leak in (*LEAKS, *secrets):
        assert leak not in text, (leak, text)
    Problem.model_validate(problem)
    return problem


def assert_unavailable(response: TestResponse, code: str, *, port: int) -> dict[str, Any]:
    """A 503 for ``code`` with Retry-After, leaking nothing of the dead ``port``."""
    problem = assert_honest_problem(response, 503, code, secrets=(f":{port}", f"port {port}"))
    assert response.headers["Retry-After"] == "5"
    assert response.headers["Cache-Control"] == "no-store"
    return problem


def logged(entries: list[EventDict], event: str) -> list[EventDict]:
    """The captured log entries named ``event``."""
    return [entry for entry in entries if entry["event"] == event]


# --- the database is down ----------------------------------------------------------------


def photocard_form() -> dict[str, Any]:
    """A valid photo card upload."""
    photo = (io.BytesIO(fixture_bytes("astronaut.png")), "me.png", "image/png")
    return {"kind": "photocard", "photo": photo}


DATABASE_CASES: dict[str, dict[str, Any]] = {
    "create video": {"method": "POST", "path": "/api/v1/jobs", "json": video_body()},
    "create with key": {
        "method": "POST",
        "path": "/api/v1/jobs",
        "json": video_body(),
        "headers": {"Idempotency-Key": "booth-7-visitor-1"},
    },
    "create photocard": {"method": "POST", "path": "/api/v1/jobs", "data": photocard_form},
    "get": {"method": "GET", "path": f"/api/v1/jobs/{uuid.uuid4()}"},
    "list": {"method": "GET", "path": "/api/v1/jobs?limit=5"},
    "events": {"method": "GET", "path": f"/api/v1/jobs/{uuid.uuid4()}/events"},
    "artifact": {"method": "GET", "path": "signed artifact"},
}


@pytest.mark.parametrize("case", DATABASE_CASES.values(), ids=list(DATABASE_CASES))
def test_database_down_is_503_with_retry_after_and_no_exception_text(
    without_database: tuple[Callable[..., Flask], int], media_dir: Path, case: dict[str, Any]
) -> None:
    build, port = without_database
    client = build().test_client()
    kwargs = dict(case)
    if callable(kwargs.get("data")):
        kwargs["data"] = kwargs["data"]()
    headers = {"X-Request-ID": REQUEST_ID, **kwargs.pop("headers", {})}
    if kwargs["path"] == "signed artifact":  # a valid URL: only the database is missing
        signer = client.application.extensions["refract"].signer
        kwargs["path"] = signer.sign(str(uuid.uuid4()))

    with structlog.testing.capture_logs() as entries:
        response = client.open(**kwargs, headers=headers)

    problem = assert_unavailable(response, "database_unavailable", port=port)
    assert problem["reference"] == REQUEST_ID
    assert problem["title"] == "Service Unavailable"
    # The log has what the client was spared, under the same reference.
    (entry,) = logged(entries, "dependency_unavailable")
    assert entry["reference"] == REQUEST_ID and entry["code"] == "database_unavailable"
    assert "OperationalError" in entry["error"] and str(port) in entry["error"]
    # Nothing was half-written: an upload stored before the commit failed is gone again.
    assert media_files(media_dir) == []


def test_database_down_still_answers_a_job_that_redis_has(
    make_app: Callable[..., Flask], without_database: tuple[Callable[..., Flask], int]
) -> None:
    created = make_app().test_client().post("/api/v1/jobs", json=video_body())
    assert created.status_code == 202
    job = created.get_json()
    build, _port = without_database

    response = build().test_client().get(f"/api/v1/jobs/{job['id']}")

    assert response.status_code == 200, response.get_json()
    assert response.get_json() == job


# --- Redis is down -----------------------------------------------------------------------


@pytest.fixture
def existing_job(make_app: Callable[..., Flask]) -> dict[str, Any]:
    """A job created while everything was up."""
    response = make_app().test_client().post("/api/v1/jobs", json=video_body())
    assert response.status_code == 202, response.get_json()
    job: dict[str, Any] = response.get_json()
    return job


def test_redis_down_a_job_is_read_and_listed_from_postgres(
    make_app: Callable[..., Flask], existing_job: dict[str, Any]
) -> None:
    dead, _port = dead_url("redis")
    client = make_app(redis_url=dead).test_client()

    response = client.get(f"/api/v1/jobs/{existing_job['id']}")
    listing = client.get("/api/v1/jobs")

    assert response.status_code == 200
    body = response.get_json()
    assert (body["id"], body["kind"], body["status"]) == (
        existing_job["id"],
        "video",
        "queued",
    )
    assert set(body["features"]) == set(existing_job["features"])
    assert listing.status_code == 200
    assert [job["id"] for job in listing.get_json()["items"]] == [existing_job["id"]]


def test_redis_down_a_finished_jobs_events_are_told_from_postgres(
    make_app: Callable[..., Flask], existing_job: dict[str, Any]
) -> None:
    healthy: Services = make_app().extensions["refract"]
    advance(healthy.bus, existing_job["id"], finish("summary", "comments", "thumbnail"))
    dead, _port = dead_url("redis")
    client = make_app(redis_url=dead).test_client()

    response = client.get(f"/api/v1/jobs/{existing_job['id']}/events")

    assert response.status_code == 200 and response.mimetype == "text/event-stream"
    frames, _comments = parse_sse(response.get_data(as_text=True))
    assert [f.event for f in frames] == ["feature", "feature", "feature", "job"]
    assert frames[-1].data["final"] is True and frames[-1].data["status"] == "succeeded"


def failing_fast(app: Flask) -> Flask:
    """``app`` with its Celery result backend giving up on Redis at the first refusal.

    A chord keeps its counter in the result backend's Redis (the progress Redis): with
    Redis down, setting it up retries for its configured 5 s before the send fails. The
    outcome is the same either way; the test just does not wait for it.
    """
    services: Services = app.extensions["refract"]
    services.celery.conf.result_backend_transport_options = {"retry_policy": {"max_retries": 0}}
    return app


def test_redis_down_submissions_are_accepted_and_left_to_the_reconciler(
    make_app: Callable[..., Flask], redis_broker: redis.Redis[bytes]
) -> None:
    # The job is committed and answered 202; its tasks cannot be sent without the
    # broker, so the reconciler sends them later, and nothing is half-sent.
    dead, _port = dead_url("redis")
    app = failing_fast(make_app(redis_url=dead, broker_url=dead))
    client = app.test_client()

    video = client.post("/api/v1/jobs", json=video_body())
    card = client.post("/api/v1/jobs", data=photocard_form())

    for response in (video, card):
        assert response.status_code == 202, response.get_json()
        assert response.headers["Location"] and response.headers["ETag"]
        job = load_job(response.get_json()["id"])
        assert job.status == "queued"
        assert job.enqueued_at is None and job.enqueue_count == 0
    assert table_counts()["jobs"] == 2
    assert redis_broker.dbsize() == 0
    # And they are there to read, from Postgres.
    for response in (video, card):
        again = client.get(response.headers["Location"])
        assert again.status_code == 200 and again.get_json() == response.get_json()


def test_progress_redis_down_with_the_broker_up_sends_what_needs_no_chord(
    make_app: Callable[..., Flask], redis_broker: redis.Redis[bytes]
) -> None:
    # The API sends without waiting on results, so a video job's independent features
    # go out through the broker even while the progress (and result) Redis is down. A
    # photo card's chord keeps its counter in that Redis: it is left to the reconciler
    # whole, none of its tasks sent.
    dead, _port = dead_url("redis")
    client = failing_fast(make_app(redis_url=dead)).test_client()

    video = client.post("/api/v1/jobs", json=video_body())
    card = client.post("/api/v1/jobs", data=photocard_form())

    assert video.status_code == card.status_code == 202
    sent = load_job(video.get_json()["id"])
    assert sent.enqueued_at is not None and sent.enqueue_count == 1
    left = load_job(card.get_json()["id"])
    assert left.enqueued_at is None and left.enqueue_count == 0
    messages = [
        json.loads(raw)["headers"]
        for queue in ALL_QUEUES
        for raw in redis_broker.lrange(queue, 0, -1)
    ]
    assert sorted(m["task"].rsplit(".", 1)[1] for m in messages) == [
        "comments",
        "summary",
        "thumbnail",
    ]
    assert {m["argsrepr"] for m in messages} == {repr((str(sent.id),))}


# --- what the handler maps, whichever view runs into it ----------------------------------


def test_redis_and_broker_errors_raised_by_a_view_are_503(
    make_app: Callable[..., Flask],
) -> None:
    dead, port = dead_url("redis")
    app = make_app(redis_url=dead, broker_url=dead)
    services: Services = app.extensions["refract"]

    # Throwaway views that use Redis and the broker directly, and let their errors out.
    @app.get("/test/redis")
    def touch_redis() -> str:
        return str(services.bus.client.get("anything"))

    @app.get("/test/broker")
    def touch_broker() -> str:
        with services.celery.connection_for_write(connect_timeout=1) as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, timeout=1)
        return "unreachable"

    client = app.test_client()
    with structlog.testing.capture_logs() as entries:
        from_redis = client.get("/test/redis")
        from_broker = client.get("/test/broker")

    assert_unavailable(from_redis, "redis_unavailable", port=port)
    assert_unavailable(from_broker, "broker_unavailable", port=port)
    errors = [entry["error"] for entry in logged(entries, "dependency_unavailable")]
    assert len(errors) == 2 and all(str(port) in error for error in errors)


def test_an_unexpected_error_is_a_generic_500_with_the_reference_logged(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app()

    @app.get("/test/bug")
    def bug() -> str:
        raise RuntimeError(SECRET)

    with structlog.testing.capture_logs() as entries:
        response = app.test_client().get("/test/bug")

    problem = assert_honest_problem(response, 500, "internal_error", secrets=(SECRET, "hunter2"))
    assert problem["detail"] == "an unexpected error occurred; quote the reference"
    assert "Retry-After" not in response.headers
    (entry,) = logged(entries, "unhandled_error")
    assert entry["reference"] == problem["reference"]
    assert entry["log_level"] == "error"
    assert SECRET in entry["error"]
    assert isinstance(entry["exc_info"], RuntimeError)  # the traceback goes to the log


def test_a_sql_error_that_is_not_an_outage_is_a_500(make_app: Callable[..., Flask]) -> None:
    app = make_app()

    @app.get("/test/bad-sql")
    def bad_sql() -> str:
        from sqlalchemy import text

        from api.db import get_db

        get_db().execute(text("SELECT * FROM no_such_table_here"))
        return "unreachable"

    response = app.test_client().get("/test/bad-sql", headers={"X-Request-ID": REQUEST_ID})

    problem = assert_honest_problem(response, 500, "internal_error", secrets=("no_such_table",))
    assert problem["reference"] == REQUEST_ID


@pytest.mark.parametrize(
    ("path", "status"), [("/api/v1/nothing-here", 404), ("/api/v1/jobs?limit=0", 422)]
)
def test_every_problem_carries_the_reference(
    make_app: Callable[..., Flask], path: str, status: int
) -> None:
    client = make_app().test_client()

    given = client.get(path, headers={"X-Request-ID": REQUEST_ID})
    generated = client.get(path)

    assert_honest_problem(given, status, None)
    assert given.get_json()["reference"] == REQUEST_ID
    assert_honest_problem(generated, status, None)
    assert generated.get_json()["reference"] != REQUEST_ID


# --- readiness ---------------------------------------------------------------------------


@pytest.mark.parametrize("down", ["database", "redis", "broker"])
def test_readyz_names_the_dependency_that_is_down_with_a_generic_reason(
    make_app: Callable[..., Flask],
    without_database: tuple[Callable[..., Flask], int],
    down: str,
) -> None:
    if down == "database":
        build, port = without_database
        app = build()
    else:
        dead, port = dead_url("redis")
        app = make_app(**{f"{down}_url": dead})

    with structlog.testing.capture_logs() as entries:
        response = app.test_client().get("/readyz")

    problem = assert_unavailable(response, "not_ready", port=port)
    NotReadyProblem.model_validate(problem)
    assert problem["detail"] == f"unavailable: {down}"
    expected: dict[str, dict[str, Any]] = {n: {"ok": True} for n in ("database", "redis", "broker")}
    expected[down] = {"ok": False, "error": "unreachable"}
    assert problem["checks"] == expected
    (entry,) = logged(entries, "readiness_check_failed")
    assert entry["check"] == down and entry["reason"] == "unreachable"
    assert str(port) in entry["error"]


def timeout_in_sqlalchemy() -> OperationalError:
    return OperationalError(
        "SELECT 1", {}, psycopg.errors.ConnectionTimeout("connection timeout expired")
    )


def sql_bug() -> ProgrammingError:
    return ProgrammingError("SELECT x", {}, psycopg.errors.UndefinedColumn("no column x"))


def broker_refused() -> BrokerOperationalError:
    try:
        try:
            raise ConnectionRefusedError(111, "Connection refused")
        except ConnectionRefusedError as exc:
            raise BrokerOperationalError(str(exc)) from exc
    except BrokerOperationalError as raised:
        return raised


@pytest.mark.parametrize(
    ("make_error", "reason"),
    [
        (lambda: redis.exceptions.TimeoutError("Timeout reading from 10.1.2.3:6379"), "timed out"),
        (lambda: TimeoutError("timed out"), "timed out"),
        (timeout_in_sqlalchemy, "timed out"),
        (lambda: redis.exceptions.ConnectionError("Error 111 connecting"), "unreachable"),
        (broker_refused, "unreachable"),
        (sql_bug, "failed"),
        (lambda: ValueError("anything else"), "failed"),
    ],
    ids=["redis-timeout", "socket-timeout", "db-timeout", "redis-down", "broker", "sql", "bug"],
)
def test_readiness_reasons(make_error: Callable[[], BaseException], reason: str) -> None:
    assert failure_reason(make_error()) == reason


# --- the document says so ----------------------------------------------------------------


def test_openapi_documents_reference_code_and_the_503s(make_app: Callable[..., Flask]) -> None:
    doc = make_app().test_client().get("/api/v1/openapi.json").get_json()

    problem = doc["components"]["schemas"]["Problem"]
    assert {"code", "reference"} <= set(problem["properties"])
    assert "reference" in problem["required"]
    check = doc["components"]["schemas"]["ReadinessCheck"]["properties"]["error"]
    assert "unreachable" in str(check)
    operations = [
        ("/api/v1/jobs", "post"),
        ("/api/v1/jobs", "get"),
        ("/api/v1/jobs/{job_id}", "get"),
        ("/api/v1/jobs/{job_id}/events", "get"),
        ("/api/v1/artifacts/{artifact_id}", "get"),
        ("/readyz", "get"),
    ]
    for path, method in operations:
        unavailable = doc["paths"][path][method]["responses"]["503"]
        assert "application/problem+json" in unavailable["content"], (path, method)
        assert "Retry-After" in unavailable["headers"], (path, method)
