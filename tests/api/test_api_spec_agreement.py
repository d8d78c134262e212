"""Requests the OpenAPI document calls valid are accepted, and what it documents is sent."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from api.schemas import NO_NUL
from tests.support.bodies import video_body


def document(client: FlaskClient) -> dict[str, Any]:
    doc: dict[str, Any] = client.get("/api/v1/openapi.json").get_json()
    return doc


def test_features_null_means_every_feature(client: FlaskClient) -> None:
    video = client.post("/api/v1/jobs", json={**video_body(), "features": None})
    assert video.status_code == 202, video.get_json()
    assert list(video.get_json()["features"]) == ["summary", "comments", "thumbnail"]


def test_an_empty_last_event_id_replays_from_the_start(client: FlaskClient) -> None:
    job = client.post("/api/v1/jobs", json=video_body()).get_json()
    events = client.get(f"/api/v1/jobs/{job['id']}/events", headers={"Last-Event-ID": ""})
    assert events.status_code == 200
    query = client.get(f"/api/v1/jobs/{job['id']}/events?last_event_id=")
    assert query.status_code == 200


def test_the_cursor_limit_is_the_documented_one(client: FlaskClient) -> None:
    params = document(client)["paths"]["/api/v1/jobs"]["get"]["parameters"]
    cursor = next(p for p in params if p["name"] == "cursor")
    longest = cursor["schema"].get("maxLength") or next(
        option.get("maxLength") for option in cursor["schema"].get("anyOf", []) if option
    )
    at_limit = client.get(f"/api/v1/jobs?cursor={'A' * longest}")
    # A cursor of the documented length is taken as a cursor (malformed: 422 naming it),
    # never refused for its length alone.
    assert at_limit.status_code == 422
    assert "malformed" in at_limit.get_json()["detail"]


def test_a_photo_that_is_not_an_image_is_a_documented_answer(
    client: FlaskClient,
) -> None:
    response = client.post(
        "/api/v1/jobs",
        data={"kind": "photocard", "photo": (io.BytesIO(b"not an image" * 20), "x.png")},
    )
    assert response.status_code == 415
    documented = document(client)["paths"]["/api/v1/jobs"]["post"]["responses"]
    assert "415" in documented and "422" in documented and "413" in documented


def test_event_payloads_are_documented_as_the_objects_they_are(
    make_app: Callable[..., Flask],
) -> None:
    doc = document(make_app().test_client())
    schemas = doc["components"]["schemas"]
    for name in ("FeatureEventData", "JobEventData"):
        assert schemas[name]["type"] == "object", name
    stream = doc["paths"]["/api/v1/jobs/{job_id}/events"]["get"]["responses"]["200"]
    described = str(stream)
    assert "FeatureEventData" in described and "JobEventData" in described


def test_url_or_source_is_required_in_the_document_too(client: FlaskClient) -> None:
    schema = document(client)["components"]["schemas"]["VideoJobRequest"]
    # Exactly one of the two, and not null: the validator's rule.
    assert [branch["required"] for branch in schema["oneOf"]] == [["url"], ["source"]]
    assert schema["oneOf"][0]["properties"]["source"] == {"type": "null"}
    neither = client.post("/api/v1/jobs", json={"kind": "video"})
    assert neither.status_code == 422
    both = client.post(
        "/api/v1/jobs",
        json={"kind": "video", "url": "https://youtu.be/9bZkp7q19f0", "source": {"title": "x"}},
    )
    assert both.status_code == 422


def test_no_request_string_may_hold_a_nul_in_the_document_too(client: FlaskClient) -> None:
    schemas = document(client)["components"]["schemas"]
    assert schemas["VideoSource"]["properties"]["title"]["pattern"] == NO_NUL
    assert schemas["PhotoCardForm"]["properties"]["prompt"]["pattern"] == NO_NUL
    refused = client.post("/api/v1/jobs", json={"kind": "video", "source": {"title": "a\u0000b"}})
    assert refused.status_code == 422
