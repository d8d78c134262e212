"""The reply memo in a real worker: a second job with identical inputs (the same YouTube
video, or the same inline material) costs no Gemini call, and its features say the
reply was reused and record no new tokens; identical jobs submitted at once cost one
set of calls between them."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine

from tests.support.bodies import make_source
from tests.support.fakes.gemini import FakeGemini
from tests.support.fakes.youtube import FakeYouTube, make_comments
from tests.support.stack import feature_rows, wait_for_job

pytestmark = pytest.mark.integration

FEATURES = ("summary", "comments", "thumbnail")


def calls_naming(fake: FakeGemini, marker: str) -> int:
    """How many requests the fake Gemini got that carry ``marker`` (in every prompt)."""
    return len([r for r in fake.requests if marker.encode() in r.raw])


def marked_source(marker: str) -> dict[str, Any]:
    """An inline source whose title (seen by all three prompts) carries ``marker``."""
    return {**make_source(marker), "title": f"Brewing better coffee {marker}"}


@pytest.fixture
def gemini(fake_gemini: FakeGemini) -> Iterator[FakeGemini]:
    """The module's fake Gemini, its latency put back after the test."""
    yield fake_gemini
    fake_gemini.latency_s = 0.0


def test_a_second_identical_job_reuses_every_reply(
    submit_video: Callable[..., dict[str, Any]],
    client: httpx.Client,
    db: Engine,
    gemini: FakeGemini,
) -> None:
    marker = f"memo-{uuid.uuid4().hex[:8]}"
    first = wait_for_job(client, submit_video(marked_source(marker))["id"])
    assert first["status"] == "succeeded", first
    assert calls_naming(gemini, marker) == 3

    second = wait_for_job(client, submit_video(marked_source(marker))["id"])
    assert second["status"] == "succeeded", second
    assert calls_naming(gemini, marker) == 3  # no new call
    for name in FEATURES:
        reused = second["features"][name]["result"]
        assert reused["cached"] is True
        assert "cached" not in first["features"][name]["result"]

    paid, free = feature_rows(db, first["id"]), feature_rows(db, second["id"])
    for name in FEATURES:
        assert paid[name]["input_tokens"] and paid[name]["input_tokens"] > 0
        # A reused reply spent nothing: token sums and the cost count each call once.
        assert (free[name]["input_tokens"], free[name]["output_tokens"]) == (0, 0)
        assert free[name]["model"] == paid[name]["model"]
        assert free[name]["prompt_version"] == paid[name]["prompt_version"]


def test_identical_jobs_at_once_cost_one_set_of_calls(
    submit_video: Callable[..., dict[str, Any]],
    client: httpx.Client,
    gemini: FakeGemini,
) -> None:
    gemini.latency_s = 0.5  # the first calls are still running when the others start
    marker = f"crowd-{uuid.uuid4().hex[:8]}"
    ids = [submit_video(marked_source(marker))["id"] for _ in range(4)]
    jobs = [wait_for_job(client, job_id) for job_id in ids]
    assert [job["status"] for job in jobs] == ["succeeded"] * 4, jobs
    assert calls_naming(gemini, marker) == 3
    for name in FEATURES:
        fresh = [job for job in jobs if not job["features"][name]["result"].get("cached")]
        assert len(fresh) == 1, name


def test_the_same_youtube_video_pasted_twice_is_analysed_once(
    client: httpx.Client, fake_youtube: FakeYouTube, gemini: FakeGemini
) -> None:
    title = f"Memo video {uuid.uuid4().hex[:8]}"
    fake_youtube.add_video("memovideo01", title=title, comments=make_comments(12))
    jobs = []
    for url in ("https://youtu.be/memovideo01", "https://www.youtube.com/watch?v=memovideo01"):
        response = client.post("/api/v1/jobs", json={"kind": "video", "url": url})
        assert response.status_code == 202, response.text
        jobs.append(wait_for_job(client, response.json()["id"]))
    assert [job["status"] for job in jobs] == ["succeeded", "succeeded"], jobs
    assert calls_naming(gemini, title) == 3
    for name in FEATURES:
        assert jobs[1]["features"][name]["result"]["cached"] is True
    # What the task adds beside the model's answer is the second job's own.
    assert jobs[1]["features"]["summary"]["result"]["video"]["title"] == title
    assert (
        jobs[1]["features"]["thumbnail"]["result"]["thumbnail"]["artifact_id"]
        != (jobs[0]["features"]["thumbnail"]["result"]["thumbnail"]["artifact_id"])
    )
