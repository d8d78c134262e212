"""POST /api/v1/jobs/<id>/features/<feature>/retry at every state, the bulk retry of
failures by error code and time window, and what lands on the broker.

No worker runs: features are moved the way a worker moves them (``tests/support/jobs``).
"""

from __future__ import annotations

import base64
import io
import json
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from refract.core.db import session_scope
from refract.core.models import Artifact, FeatureRun, Job, utcnow
from refract.jobs.catalog import FeatureStatus
from refract.jobs.control import enqueue_retries, retry_failed
from refract.jobs.progress import ProgressBus
from tests.support.bodies import video_body
from tests.support.jobs import advance, finish, load_job, start
from tests.support.services import free_port


def bus_of(client: FlaskClient) -> ProgressBus:
    bus: ProgressBus = client.application.extensions["refract"].bus
    return bus


def broker_tasks(broker: redis.Redis[bytes], queue: str) -> list[tuple[str, list[Any], Any]]:
    """The messages waiting on ``queue``: task name, args and chord callback."""
    found = []
    for raw in broker.lrange(queue, 0, -1):
        message = json.loads(raw)
        args, _kwargs, embed = json.loads(base64.b64decode(message["body"]))
        found.append((message["headers"]["task"], args, embed["chord"]))
    return found


def submit_video(client: FlaskClient) -> str:
    response = client.post("/api/v1/jobs", json=video_body())
    assert response.status_code == 202, response.get_json()
    job_id: str = response.get_json()["id"]
    return job_id


def submit_photo(client: FlaskClient, photo: bytes) -> str:
    response = client.post(
        "/api/v1/jobs", data={"kind": "photocard", "photo": (io.BytesIO(photo), "me.png")}
    )
    assert response.status_code == 202, response.get_json()
    job_id: str = response.get_json()["id"]
    return job_id


def retry(client: FlaskClient, job_id: str, feature: str) -> Any:
    return client.post(f"/api/v1/jobs/{job_id}/features/{feature}/retry")


def with_image(name: str, job_id: str) -> Callable[[dict[str, FeatureRun]], None]:
    """A mutation: ``name`` succeeded with a stored image, as stylize and card do."""
    artifact = uuid.uuid4()
    with session_scope() as session:
        session.add(
            Artifact(
                id=artifact,
                job_id=uuid.UUID(job_id),
                role=name,
                content_type="image/png",
                size=1,
                sha256="0" * 64,
                storage_key=f"{name}.png",
            )
        )

    def mutate(runs: dict[str, FeatureRun]) -> None:
        finish(name)(runs)
        runs[name].result = {"artifact_id": str(artifact), "content_type": "image/png"}
        runs[name].input_tokens, runs[name].output_tokens = 10, 5

    return mutate


@pytest.mark.parametrize("status", ["waiting", "queued", "running"])
def test_a_feature_not_final_is_409(
    client: FlaskClient, astronaut_png: bytes, redis_broker: redis.Redis[bytes], status: str
) -> None:
    job_id = submit_photo(client, astronaut_png)
    advance(bus_of(client), job_id, start("stylize"))
    feature = {"waiting": "card", "queued": "caption", "running": "stylize"}[status]
    redis_broker.delete("image")
    version = load_job(job_id).version

    response = retry(client, job_id, feature)

    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["code"] == "feature_not_final"
    assert load_job(job_id).version == version  # nothing changed
    assert redis_broker.llen("image") == 0


@pytest.mark.parametrize(
    "status",
    [FeatureStatus.FAILED, FeatureStatus.BLOCKED, FeatureStatus.SKIPPED, FeatureStatus.SUCCEEDED],
)
def test_a_final_feature_is_queued_again_and_sent(
    client: FlaskClient, redis_broker: redis.Redis[bytes], status: FeatureStatus
) -> None:
    job_id = submit_video(client)
    advance(bus_of(client), job_id, finish("summary", "comments", "thumbnail", status=status))
    assert load_job(job_id).finished_at is not None
    redis_broker.delete("text", "image")

    body = retry(client, job_id, "summary").get_json()

    summary = body["features"]["summary"]
    assert (summary["status"], summary["attempts"], summary["progress"]) == ("queued", 0, 0.0)
    assert summary["result"] is None and summary["error"] is None and summary["usage"] is None
    assert summary["finished_at"] is None and summary["started_at"] is None
    assert body["features"]["comments"]["status"] == status.value  # untouched
    assert body["status"] == "running" and body["finished_at"] is None
    job = load_job(job_id)
    assert job.status == "running" and job.finished_at is None and job.enqueue_count == 1
    assert broker_tasks(redis_broker, "text") == [("refract.text.summary", [job_id], None)]
    assert redis_broker.llen("image") == 0


def test_retrying_a_canceled_job_runs_it_again(
    client: FlaskClient, redis_broker: redis.Redis[bytes]
) -> None:
    job_id = submit_video(client)
    assert client.post(f"/api/v1/jobs/{job_id}/cancel").get_json()["status"] == "canceled"

    body = retry(client, job_id, "comments").get_json()

    assert body["status"] == "running"
    assert body["features"]["comments"]["status"] == "queued"
    assert body["features"]["summary"]["status"] == "canceled"
    # Canceling it again stops the retried feature too.
    again = client.post(f"/api/v1/jobs/{job_id}/cancel").get_json()
    assert again["status"] == "canceled" and again["finished_at"] is not None


def test_retrying_stylize_after_the_card_was_made_makes_a_new_card(
    client: FlaskClient, astronaut_png: bytes, redis_broker: redis.Redis[bytes]
) -> None:
    job_id = submit_photo(client, astronaut_png)
    bus = bus_of(client)
    advance(bus, job_id, finish("caption"))
    advance(bus, job_id, with_image("stylize", job_id))
    advance(bus, job_id, with_image("card", job_id))
    done = client.get(f"/api/v1/jobs/{job_id}").get_json()
    assert done["status"] == "succeeded" and done["features"]["card"]["result"]["image_url"]
    redis_broker.delete("image")

    response = retry(client, job_id, "stylize")

    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    features = body["features"]
    assert features["caption"]["status"] == "succeeded" and features["caption"]["result"]
    assert (features["stylize"]["status"], features["card"]["status"]) == ("queued", "waiting")
    for name in ("stylize", "card"):
        assert features[name]["result"] is None and features[name]["usage"] is None, name
        assert features[name]["attempts"] == 0 and features[name]["finished_at"] is None
    assert body["status"] == "running" and body["finished_at"] is None
    # Stylize alone is sent: its run is no chord member, so it sends card once done.
    assert broker_tasks(redis_broker, "image") == [("refract.image.stylize", [job_id], None)]
    # The Redis snapshot (what GET answers) says the same; the old images are not shown.
    assert client.get(f"/api/v1/jobs/{job_id}").get_json()["version"] == body["version"]
    assert "artifact" not in json.dumps(features["card"])


def test_retrying_the_card_sends_it_alone(
    client: FlaskClient, astronaut_png: bytes, redis_broker: redis.Redis[bytes]
) -> None:
    job_id = submit_photo(client, astronaut_png)
    bus = bus_of(client)
    advance(bus, job_id, finish("caption"))
    advance(bus, job_id, with_image("stylize", job_id))
    advance(bus, job_id, finish("card", status=FeatureStatus.FAILED))
    redis_broker.delete("image")

    body = retry(client, job_id, "card").get_json()

    assert body["features"]["card"]["status"] == "queued"
    assert body["features"]["stylize"]["result"]["artifact_id"]
    assert broker_tasks(redis_broker, "image") == [("refract.image.card", [job_id], None)]


def test_unknown_jobs_and_features_are_404(client: FlaskClient) -> None:
    job_id = submit_video(client)
    advance(bus_of(client), job_id, finish("summary", status=FeatureStatus.FAILED))
    for feature in ("card", "nonsense"):  # a photo card's feature, and none at all
        response = retry(client, job_id, feature)
        assert response.status_code == 404, feature
        assert response.mimetype == "application/problem+json"
    unknown = "3f0c1b8e-0000-4000-8000-000000000000"
    assert retry(client, unknown, "summary").status_code == 404
    assert retry(client, "not-a-uuid", "summary").status_code == 404


def test_a_job_whose_inputs_were_erased_cannot_run_again(client: FlaskClient) -> None:
    job_id = submit_video(client)
    advance(bus_of(client), job_id, finish("summary", status=FeatureStatus.FAILED))
    with session_scope() as session:
        session.execute(update(Job).where(Job.id == uuid.UUID(job_id)).values(purged_at=utcnow()))

    response = retry(client, job_id, "summary")

    assert response.status_code == 409 and response.get_json()["code"] == "job_purged"


def test_a_broker_that_is_down_is_503_but_the_retry_is_recorded(
    make_app: Callable[..., Flask],
) -> None:
    client = make_app(broker_url=f"redis://127.0.0.1:{free_port()}/0").test_client()
    job_id = submit_video(client)
    advance(bus_of(client), job_id, finish("summary", status=FeatureStatus.FAILED))

    response = retry(client, job_id, "summary")

    assert response.status_code == 503
    problem = response.get_json()
    assert problem["code"] == "broker_unavailable" and "recorded" in problem["detail"]
    assert response.headers["Retry-After"]
    job = load_job(job_id)
    summary = next(run for run in job.features if run.feature == "summary")
    # Recorded: the reconciler sends it once the broker is back.
    assert summary.status == "queued" and job.status == "queued"
    assert job.enqueued_at is not None and job.enqueue_count == 0


def fail(job_id: str, feature: str, code: str, minutes_ago: float) -> None:
    with session_scope() as session:
        session.execute(
            update(FeatureRun)
            .where(FeatureRun.job_id == uuid.UUID(job_id), FeatureRun.feature == feature)
            .values(
                status="failed",
                progress=1.0,
                error_code=code,
                error_message="x",
                finished_at=utcnow() - timedelta(minutes=minutes_ago),
            )
        )


def test_retry_failed_takes_one_error_code_in_one_window(
    client: FlaskClient, redis_broker: redis.Redis[bytes]
) -> None:
    inside, outside, other_code, purged = (submit_video(client) for _ in range(4))
    fail(inside, "summary", "rate_limited", 10)
    fail(inside, "comments", "rate_limited", 20)
    fail(inside, "thumbnail", "model_timeout", 10)
    fail(outside, "summary", "rate_limited", 90)
    fail(other_code, "summary", "model_timeout", 10)
    fail(purged, "summary", "rate_limited", 10)
    with session_scope() as session:
        session.execute(update(Job).where(Job.id == uuid.UUID(purged)).values(purged_at=utcnow()))
    redis_broker.delete("text", "image")
    now = utcnow()

    with session_scope() as session:
        plan = retry_failed(
            session,
            bus_of(client),
            error_code="rate_limited",
            since=now - timedelta(minutes=60),
            until=now,
        )
    assert plan == {uuid.UUID(inside): ["summary", "comments"]}
    with session_scope() as session:
        enqueue_retries(client.application.extensions["refract"].celery, session, plan)

    statuses = {run.feature: run.status for run in load_job(inside).features}
    assert statuses == {"summary": "queued", "comments": "queued", "thumbnail": "failed"}
    for untouched in (outside, other_code, purged):
        assert next(r for r in load_job(untouched).features if r.feature == "summary").status == (
            "failed"
        )
    sent = sorted(task for task, _args, _chord in broker_tasks(redis_broker, "text"))
    assert sent == ["refract.text.comments", "refract.text.summary"]
    assert load_job(inside).enqueue_count == 1
    # The snapshot clients read was published with the change.
    assert client.get(f"/api/v1/jobs/{inside}").get_json()["features"]["summary"]["status"] == (
        "queued"
    )
    with session_scope() as session:
        again = retry_failed(
            session,
            bus_of(client),
            error_code="rate_limited",
            since=now - timedelta(hours=1),
            until=utcnow(),
        )
    assert again == {}
    with session_scope() as session:
        assert session.scalar(select(Job.status).where(Job.id == uuid.UUID(inside))) == "running"
