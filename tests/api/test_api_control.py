"""POST /api/v1/jobs/<id>/cancel at every state, and who may cancel or retry.

No worker runs: features are moved the way a worker moves them (``tests/support/jobs``),
and what a retry sends is read from the broker's Redis lists.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from refract.jobs.catalog import FeatureStatus
from refract.jobs.progress import ProgressBus
from refract.jobs.resource import JobResource
from tests.support.bodies import video_body
from tests.support.jobs import advance, finish, load_job, start
from tests.support.keys import bearer, make_key

UNKNOWN = "3f0c1b8e-0000-4000-8000-000000000000"


def bus_of(client: FlaskClient) -> ProgressBus:
    bus: ProgressBus = client.application.extensions["refract"].bus
    return bus


def submit_video(client: FlaskClient, **headers: str) -> str:
    response = client.post("/api/v1/jobs", json=video_body(), headers=headers)
    assert response.status_code == 202, response.get_json()
    job_id: str = response.get_json()["id"]
    return job_id


def submit_photo(client: FlaskClient, photo: bytes, **headers: str) -> str:
    response = client.post(
        "/api/v1/jobs",
        data={"kind": "photocard", "photo": (io.BytesIO(photo), "me.png")},
        headers=headers,
    )
    assert response.status_code == 202, response.get_json()
    job_id: str = response.get_json()["id"]
    return job_id


def cancel(client: FlaskClient, job_id: str, **headers: str) -> Any:
    return client.post(f"/api/v1/jobs/{job_id}/cancel", headers=headers)


def events(progress: redis.Redis[str], job_id: str) -> list[tuple[str, dict[str, Any]]]:
    entries = progress.xrange(f"refract:job:{job_id}:events")
    return [(fields["type"], json.loads(fields["data"])) for _id, fields in entries]


def test_canceling_a_queued_job_cancels_every_feature_at_once(
    client: FlaskClient, redis_progress: redis.Redis[str]
) -> None:
    job_id = submit_video(client)

    response = cancel(client, job_id)

    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    JobResource.model_validate(body)
    assert body["status"] == "canceled" and body["finished_at"] is not None
    for feature in body["features"].values():
        assert feature["status"] == "canceled"
        assert feature["error"]["code"] == "canceled"
        assert feature["result"] is None
    assert response.headers["ETag"] and "Retry-After" not in response.headers
    # A client following the job sees each feature canceled, then the final job event.
    seen = events(redis_progress, job_id)
    canceled = [data["feature"] for kind, data in seen if kind == "feature"]
    assert sorted(canceled) == ["comments", "summary", "thumbnail"]
    assert seen[-1][0] == "job" and seen[-1][1]["final"] and seen[-1][1]["status"] == "canceled"
    # Reading it afterwards gives the same resource.
    assert client.get(f"/api/v1/jobs/{job_id}").get_json() == body


def test_canceling_after_a_success_makes_the_job_partial(client: FlaskClient) -> None:
    job_id = submit_video(client)
    advance(bus_of(client), job_id, finish("summary"))
    advance(bus_of(client), job_id, start("comments"))

    body = cancel(client, job_id).get_json()

    assert body["status"] == "partial"
    features = body["features"]
    assert features["summary"]["status"] == "succeeded"
    assert features["summary"]["result"] == {"tldr": "summary done"}
    assert features["comments"]["status"] == features["thumbnail"]["status"] == "canceled"


def test_canceling_a_photo_card_cancels_the_waiting_card_and_the_running_input(
    client: FlaskClient, astronaut_png: bytes
) -> None:
    job_id = submit_photo(client, astronaut_png)
    advance(bus_of(client), job_id, start("stylize"))

    body = cancel(client, job_id).get_json()

    assert body["status"] == "canceled"
    assert {name: f["status"] for name, f in body["features"].items()} == {
        "caption": "canceled",
        "stylize": "canceled",
        "card": "canceled",
    }
    stored = load_job(job_id)
    assert stored.status == "canceled" and stored.finished_at is not None


@pytest.mark.parametrize(
    ("finished", "status"),
    [
        (FeatureStatus.SUCCEEDED, "succeeded"),
        (FeatureStatus.FAILED, "failed"),
        (None, "canceled"),
    ],
    ids=["succeeded", "failed", "canceled"],
)
def test_canceling_a_final_job_again_changes_nothing(
    client: FlaskClient,
    redis_progress: redis.Redis[str],
    finished: FeatureStatus | None,
    status: str,
) -> None:
    job_id = submit_video(client)
    if finished is not None:
        advance(bus_of(client), job_id, finish("summary", "comments", "thumbnail", status=finished))
    else:
        assert cancel(client, job_id).status_code == 202
    before = client.get(f"/api/v1/jobs/{job_id}")
    events_before = events(redis_progress, job_id)

    again = cancel(client, job_id)

    assert again.status_code == 202
    assert again.get_json() == before.get_json()
    assert again.get_json()["status"] == status
    assert again.headers["ETag"] == before.headers["ETag"]
    assert events(redis_progress, job_id) == events_before


def test_a_partial_job_stays_partial(client: FlaskClient) -> None:
    job_id = submit_video(client)
    advance(bus_of(client), job_id, finish("summary"))
    advance(bus_of(client), job_id, finish("comments", "thumbnail", status=FeatureStatus.FAILED))
    version = load_job(job_id).version

    body = cancel(client, job_id).get_json()

    assert body["status"] == "partial" and body["version"] == version
    assert body["features"]["comments"]["status"] == "failed"


def test_cancel_of_an_unknown_or_malformed_job_is_404(client: FlaskClient) -> None:
    for job_id in (UNKNOWN, "not-a-uuid"):
        response = cancel(client, job_id)
        assert response.status_code == 404
        assert response.mimetype == "application/problem+json"


@pytest.fixture
def guarded(make_app: Callable[..., Flask]) -> FlaskClient:
    """A client of an app that requires keys."""
    return make_app(auth="required", key_cache_s=0).test_client()


def test_only_the_owner_or_an_admin_may_cancel(guarded: FlaskClient) -> None:
    owner, other, admin = make_key("booth-1"), make_key("booth-2"), make_key("staff", "admin")
    first = submit_video(guarded, **bearer(owner))
    second = submit_video(guarded, **bearer(owner))

    assert cancel(guarded, first).status_code == 401
    hidden = cancel(guarded, first, **bearer(other))
    missing = cancel(guarded, UNKNOWN, **bearer(other))
    # Another key's job does not exist for it, exactly as an unknown one.
    assert hidden.status_code == missing.status_code == 404
    assert load_job(first).status == "queued"

    assert cancel(guarded, first, **bearer(owner)).get_json()["status"] == "canceled"
    assert cancel(guarded, second, **bearer(admin)).get_json()["status"] == "canceled"


def test_only_an_admin_or_the_owner_of_a_failure_may_retry(guarded: FlaskClient) -> None:
    owner, other, admin = make_key("booth-1"), make_key("booth-2"), make_key("staff", "admin")
    job_id = submit_video(guarded, **bearer(owner))
    bus = bus_of(guarded)
    advance(bus, job_id, finish("summary", status=FeatureStatus.FAILED))
    advance(bus, job_id, finish("comments", status=FeatureStatus.BLOCKED))
    advance(bus, job_id, finish("thumbnail"))

    def retry(feature: str, secret: str | None) -> Any:
        headers = bearer(secret) if secret else {}
        return guarded.post(f"/api/v1/jobs/{job_id}/features/{feature}/retry", headers=headers)

    assert retry("summary", None).status_code == 401
    assert retry("summary", other).status_code == 404
    for feature in ("comments", "thumbnail"):
        refused = retry(feature, owner)
        assert refused.status_code == 403, feature
        assert refused.get_json()["code"] == "retry_not_allowed"
    assert load_job(job_id).status == "partial"

    assert retry("summary", owner).get_json()["features"]["summary"]["status"] == "queued"
    assert retry("comments", admin).get_json()["features"]["comments"]["status"] == "queued"
    # An admin may run a succeeded feature again too.
    body = retry("thumbnail", admin).get_json()
    assert body["features"]["thumbnail"]["status"] == "queued"
    assert body["status"] == "queued" and body["finished_at"] is None


def test_both_operations_are_in_the_openapi_document(client: FlaskClient) -> None:
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    cancel_op = paths["/api/v1/jobs/{job_id}/cancel"]["post"]
    retry_op = paths["/api/v1/jobs/{job_id}/features/{feature}/retry"]["post"]
    assert cancel_op["operationId"] == "cancelJob" and retry_op["operationId"] == "retryFeature"
    assert {"202", "401", "404", "503"} <= set(cancel_op["responses"])
    assert {"202", "401", "403", "404", "409", "503"} <= set(retry_op["responses"])
    problem = retry_op["responses"]["409"]["content"]
    assert list(problem) == ["application/problem+json"]


def test_a_retry_body_is_the_job_resource_with_a_fresh_id(client: FlaskClient) -> None:
    job_id = submit_video(client)
    advance(bus_of(client), job_id, finish("summary", status=FeatureStatus.FAILED))
    response = client.post(f"/api/v1/jobs/{job_id}/features/summary/retry")
    assert response.status_code == 202
    body = response.get_json()
    JobResource.model_validate(body)
    assert body["id"] == job_id and uuid.UUID(body["id"])
    assert response.headers["Retry-After"] == "2"
