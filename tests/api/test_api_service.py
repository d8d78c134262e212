"""Health, readiness, the OpenAPI document and the generic error responses."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import redis
from flask import Flask
from flask.testing import FlaskClient
from openapi_spec_validator import validate

from tests.support.services import RedisDb, RedisServer, free_port

ROOT = Path(__file__).resolve().parents[2]


def test_healthz_is_ok(client: FlaskClient) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_checks_database_redis_and_broker(client: FlaskClient) -> None:
    response = client.get("/readyz")

    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {
        "status": "ok",
        "checks": {"database": {"ok": True}, "redis": {"ok": True}, "broker": {"ok": True}},
    }


def test_readyz_is_503_when_redis_is_down(make_app: Callable[..., Flask]) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    response = make_app(redis_url=dead, broker_url=dead).test_client().get("/readyz")

    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert response.headers["Retry-After"] == "5"
    problem = response.get_json()
    assert problem["status"] == 503 and "redis" in problem["detail"]
    assert problem["checks"]["database"] == {"ok": True}
    assert problem["checks"]["redis"]["ok"] is False and problem["checks"]["redis"]["error"]
    assert problem["checks"]["broker"]["ok"] is False


def test_openapi_document_is_valid_and_describes_the_api(client: FlaskClient) -> None:
    response = client.get("/api/v1/openapi.json")

    assert response.status_code == 200
    doc = response.get_json()
    validate(doc)  # raises on an invalid OpenAPI document
    assert doc["openapi"].startswith("3.")
    paths = doc["paths"]
    assert set(paths) >= {
        "/api/v1/jobs",
        "/api/v1/jobs/{job_id}",
        "/api/v1/jobs/{job_id}/events",
        "/api/v1/artifacts/{artifact_id}",
        "/healthz",
        "/readyz",
    }
    create = paths["/api/v1/jobs"]["post"]
    body = create["requestBody"]["content"]
    assert body["application/json"]["schema"]["$ref"].endswith("/VideoJobRequest")
    assert body["multipart/form-data"]["schema"]["$ref"].endswith("/PhotoCardForm")
    assert {"202", "200", "400", "409", "413", "415", "422"} <= set(create["responses"])
    problem = create["responses"]["422"]["content"]
    assert list(problem) == ["application/problem+json"]
    assert "Idempotency-Key" in [p["name"] for p in create["parameters"]]

    schemas = doc["components"]["schemas"]
    video = schemas["VideoJobRequest"]
    assert {"kind", "url", "source", "features", "language"} <= set(video["properties"])
    card = schemas["PhotoCardForm"]
    assert card["properties"]["photo"]["format"] == "binary"
    assert card["properties"]["prompt"]["maxLength"] == 500
    assert {"JobResource", "FeatureResource", "Problem", "JobList", "VideoSource"} <= set(schemas)

    events = paths["/api/v1/jobs/{job_id}/events"]["get"]
    assert "text/event-stream" in events["responses"]["200"]["content"]
    assert "Last-Event-ID" in [p["name"] for p in events["parameters"]]
    listing = paths["/api/v1/jobs"]["get"]
    assert {"status", "kind", "limit", "cursor"} <= {p["name"] for p in listing["parameters"]}
    artifact = paths["/api/v1/artifacts/{artifact_id}"]["get"]["responses"]["200"]["content"]
    assert {"image/png", "image/jpeg", "image/webp"} <= set(artifact)


def test_unknown_route_and_wrong_method_are_problems(client: FlaskClient) -> None:
    missing = client.get("/api/v1/nothing-here")
    wrong = client.delete("/api/v1/jobs")

    assert missing.status_code == 404 and missing.mimetype == "application/problem+json"
    assert missing.get_json()["title"] == "Not Found"
    assert wrong.status_code == 405 and wrong.mimetype == "application/problem+json"
    assert "POST" in wrong.headers["Allow"]


def test_submitting_a_job_imports_no_task_bodies(
    tmp_path: Path,
    redis_server: RedisServer,
    redis_broker: redis.Redis[bytes],
    redis_progress: redis.Redis[str],
) -> None:
    # In a fresh interpreter: other test suites in this process may import tasks/.
    code = f"""
import sys
from api import create_app
from refract.core.db import get_engine
from refract.core.models import Base
from refract.core.settings import Settings
app = create_app(Settings(
    database_url="sqlite:///{tmp_path}/api.db", media_dir="{tmp_path}/media",
    redis_url="{redis_server.url(RedisDb.PROGRESS)}",
    broker_url="{redis_server.url(RedisDb.BROKER)}",
    model_backend="local", auth="off", secret_key="test"))
Base.metadata.create_all(get_engine())
response = app.test_client().post(
    "/api/v1/jobs", json={{"kind": "video", "url": "https://youtu.be/9bZkp7q19f0"}})
assert response.status_code == 202, response.get_data()
leaked = [m for m in sys.modules if m == "tasks" or m.startswith("tasks.")]
assert not leaked, leaked
"""
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
