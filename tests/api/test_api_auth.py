"""The front door: API keys, and jobs that only their owner (or an admin) can see."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event

from api.auth import check_startup, is_loopback
from launch.stack import LocalStack
from refract.core.db import get_engine
from refract.core.errors import StartupRefused
from refract.core.settings import Settings
from tests.support.bodies import video_body
from tests.support.jobs import table_counts
from tests.support.keys import bearer, make_key, revoke


@pytest.fixture
def guarded(make_app: Callable[..., Flask]) -> FlaskClient:
    """A client of an app that requires keys (and trusts a looked-up key for 0 s)."""
    return make_app(auth="required", key_cache_s=0).test_client()


def create(client: FlaskClient, secret: str, **headers: str) -> dict[str, Any]:
    response = client.post("/api/v1/jobs", json=video_body(), headers={**bearer(secret), **headers})
    assert response.status_code in (200, 202), response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Basic dXNlcjpwdw=="}, {"Authorization": "Bearer "}],
    ids=["none", "basic", "empty"],
)
def test_no_key_is_401_with_the_bearer_challenge(
    guarded: FlaskClient, headers: dict[str, str]
) -> None:
    for method, path in [("post", "/api/v1/jobs"), ("get", "/api/v1/jobs")]:
        response = getattr(guarded, method)(path, json=video_body(), headers=headers)
        assert response.status_code == 401
        assert response.mimetype == "application/problem+json"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert response.get_json()["reference"]
    assert table_counts()["jobs"] == 0


def test_unknown_and_revoked_keys_are_401(guarded: FlaskClient) -> None:
    secret = make_key("booth-1")
    assert guarded.get("/api/v1/jobs", headers=bearer(secret)).status_code == 200
    assert guarded.get("/api/v1/jobs", headers=bearer(secret + "x")).status_code == 401
    assert guarded.get("/api/v1/jobs", headers=bearer("rk_made-up")).status_code == 401

    revoke("booth-1")

    response = guarded.get("/api/v1/jobs", headers=bearer(secret))
    assert response.status_code == 401 and "revoked" in response.get_json()["detail"]


def test_public_routes_need_no_key(guarded: FlaskClient) -> None:
    assert guarded.get("/healthz").status_code == 200
    assert guarded.get("/api/v1/openapi.json").status_code == 200
    # An artifact's URL is its own credential (checked by its signature, not a key).
    assert guarded.get("/api/v1/artifacts/00000000-0000-0000-0000-000000000000").status_code != 401


def test_a_client_sees_only_its_own_jobs_and_an_admin_sees_all(guarded: FlaskClient) -> None:
    mine, theirs, admin = make_key("booth-1"), make_key("booth-2"), make_key("staff", "admin")
    my_job, their_job = create(guarded, mine), create(guarded, theirs)

    # Another key's job does not exist, exactly as an unknown one (and its events too).
    unknown = "3f0c1b8e-0000-4000-8000-000000000000"
    for path in (f"/api/v1/jobs/{their_job['id']}", f"/api/v1/jobs/{their_job['id']}/events"):
        hidden = guarded.get(path, headers=bearer(mine))
        missing = guarded.get(path.replace(their_job["id"], unknown), headers=bearer(mine))
        assert hidden.status_code == missing.status_code == 404
        assert (
            hidden.get_json()["detail"].replace(their_job["id"], unknown)
            == (missing.get_json()["detail"])
        )
    assert guarded.get(f"/api/v1/jobs/{my_job['id']}", headers=bearer(mine)).status_code == 200

    listed = guarded.get("/api/v1/jobs", headers=bearer(mine)).get_json()["items"]
    assert [job["id"] for job in listed] == [my_job["id"]]
    everything = guarded.get("/api/v1/jobs", headers=bearer(admin)).get_json()["items"]
    assert {job["id"] for job in everything} == {my_job["id"], their_job["id"]}
    assert guarded.get(f"/api/v1/jobs/{their_job['id']}", headers=bearer(admin)).status_code == 200


def test_idempotency_keys_are_scoped_to_the_api_key(guarded: FlaskClient) -> None:
    one, two = make_key("booth-1"), make_key("booth-2")

    first = create(guarded, one, **{"Idempotency-Key": "visitor-42"})
    replay = create(guarded, one, **{"Idempotency-Key": "visitor-42"})
    other = create(guarded, two, **{"Idempotency-Key": "visitor-42"})

    assert replay["id"] == first["id"]
    # The same key from another client is another job, and reveals nothing of the first.
    assert other["id"] != first["id"]
    assert table_counts()["jobs"] == 2


def test_auth_off_answers_everyone_as_before(make_app: Callable[..., Flask]) -> None:
    client = make_app(auth="off").test_client()
    created = client.post("/api/v1/jobs", json=video_body())
    assert created.status_code == 202
    assert client.get(created.headers["Location"]).status_code == 200
    assert len(client.get("/api/v1/jobs").get_json()["items"]) == 1


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "::1", "[::1]", "localhost", "127.0.0.2", "::ffff:127.0.0.1"]
)
def test_auth_off_is_allowed_on_loopback(host: str, make_settings: Callable[..., Settings]) -> None:
    assert is_loopback(host)
    check_startup(make_settings(auth="off"), host)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "booth.example"])
def test_auth_off_is_refused_beyond_loopback(
    host: str, make_settings: Callable[..., Settings]
) -> None:
    with pytest.raises(StartupRefused, match="loopback") as refused:
        check_startup(make_settings(auth="off"), host)
    assert "\n" not in str(refused.value)
    check_startup(make_settings(auth="required"), host)  # with keys, any address


def test_no_signing_secret_refuses_to_start(make_settings: Callable[..., Settings]) -> None:
    with pytest.raises(StartupRefused, match="REFRACT_SECRET_KEY"):
        check_startup(make_settings(auth="required", secret_key=None), "0.0.0.0")


def test_refract_up_beyond_loopback_needs_keys(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Refused before anything starts (no Redis, no migration, no child).
    monkeypatch.setenv("REFRACT_AUTH", "off")
    stack = LocalStack(make_settings(auth="off"), host="0.0.0.0", state_dir=tmp_path)
    with pytest.raises(StartupRefused, match="loopback"):
        stack.start()
    assert stack.redis is None and stack.supervisor is None


def test_refract_up_on_loopback_runs_without_keys_and_shares_one_secret(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("REFRACT_AUTH", raising=False)
    monkeypatch.delenv("REFRACT_SECRET_KEY", raising=False)
    first = LocalStack(make_settings(), host="127.0.0.1", state_dir=tmp_path)
    first.env = {}
    first._front_door()
    again = LocalStack(make_settings(), host="127.0.0.1", state_dir=tmp_path)
    again.env = {}
    again._front_door()

    assert first.env["REFRACT_AUTH"] == "off"
    assert first.describe().endswith("auth: off (loopback only)")  # the banner's line
    assert first.env["REFRACT_SECRET_KEY"] == again.env["REFRACT_SECRET_KEY"]  # kept
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0  # readable by its owner only


def test_an_admin_lists_one_keys_jobs_by_name(guarded: FlaskClient) -> None:
    one, two, admin = make_key("booth-1"), make_key("booth-2"), make_key("staff", "admin")
    create(guarded, one)
    theirs = create(guarded, two)
    revoke("booth-2")  # a revoked key's jobs can still be looked at

    listed = guarded.get("/api/v1/jobs?key=booth-2", headers=bearer(admin))
    assert [job["id"] for job in listed.get_json()["items"]] == [theirs["id"]]

    # A name no key has is a filter that matches nothing, as any other filter would.
    unknown = guarded.get("/api/v1/jobs?key=nobody", headers=bearer(admin))
    assert unknown.status_code == 200
    assert unknown.get_json() == {"items": [], "next_cursor": None}
    # Only an admin may name a key, even the client's own.
    for name in ("booth-2", "booth-1"):
        refused = guarded.get(f"/api/v1/jobs?key={name}", headers=bearer(one))
        assert refused.status_code == 403
        assert refused.mimetype == "application/problem+json"


def test_a_paged_listing_keeps_the_key_filter(guarded: FlaskClient) -> None:
    one, admin = make_key("booth-1"), make_key("staff", "admin")
    for _ in range(3):
        create(guarded, one)
    page = guarded.get("/api/v1/jobs?key=booth-1&limit=2", headers=bearer(admin))
    assert "key=booth-1" in page.headers["Link"]


def test_reading_an_owned_job_from_its_snapshot_asks_the_database_nothing(
    make_app: Callable[..., Flask],
) -> None:
    client = make_app(auth="required", key_cache_s=60).test_client()
    secret = make_key("booth-1")
    job = create(client, secret)
    assert client.get(f"/api/v1/jobs/{job['id']}", headers=bearer(secret)).status_code == 200

    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(str(args[2]))

    engine = get_engine()
    event.listen(engine, "before_cursor_execute", record)
    try:
        again = client.get(f"/api/v1/jobs/{job['id']}", headers=bearer(secret))
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert again.status_code == 200
    # The key and the job's owner come from this process's caches, the job from Redis.
    assert statements == []


def test_auth_off_answers_only_its_own_machine(make_app: Callable[..., Flask]) -> None:
    client = make_app(auth="off").test_client()
    for address in ("127.0.0.1", "::1", "::ffff:127.0.0.1"):
        local = client.get("/api/v1/jobs", environ_base={"REMOTE_ADDR": address})
        assert local.status_code == 200, address
    # Served on another address some other way (no launcher checked it): still refused.
    remote = client.get("/api/v1/jobs", environ_base={"REMOTE_ADDR": "192.168.1.20"})
    assert remote.status_code == 403
    assert remote.mimetype == "application/problem+json"


def test_the_document_declares_the_bearer_scheme(guarded: FlaskClient) -> None:
    doc = guarded.get("/api/v1/openapi.json").get_json()
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {
        **doc["components"]["securitySchemes"]["bearerAuth"],
        "type": "http",
        "scheme": "bearer",
    }
    assert doc["security"] == [{"bearerAuth": []}]
    operations = {op["operationId"]: op for path in doc["paths"].values() for op in path.values()}
    for public in ("healthz", "readyz", "getArtifact"):
        assert operations[public]["security"] == [], public
        assert "401" not in operations[public]["responses"], public
    for guarded_op in ("createJob", "getJob", "listJobs", "streamJobEvents", "deleteJob"):
        assert "security" not in operations[guarded_op], guarded_op
        assert "WWW-Authenticate" in operations[guarded_op]["responses"]["401"]["headers"]
    for one_job in ("getJob", "streamJobEvents", "deleteJob"):
        assert "404" in operations[one_job]["responses"], one_job
    assert "403" in operations["listJobs"]["responses"]
