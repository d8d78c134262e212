"""Cancel and retry on a real stack: a cancel racing a running feature on a real worker
discards its late answer, and a failed feature retried runs again with a new card."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from tests.support.bodies import make_source
from tests.support.fakes.gemini import FakeGemini, Reply
from tests.support.images import fixture_bytes
from tests.support.stack import RefractStack, feature_rows, wait_for_job, wait_for_log

pytestmark = pytest.mark.integration

STYLIZE_PROMPT = "character artist"  # only the stylize prompt says it
# What the worker logs when it discards the outcome of a feature canceled while it ran.
DROPPED = "the feature was canceled"


def roles(db: Engine, job_id: str) -> list[str]:
    with db.connect() as conn:
        rows = conn.execute(text("SELECT role FROM artifacts WHERE job_id = :id"), {"id": job_id})
        return sorted(row[0] for row in rows)


def wait_for_model_call(fake: FakeGemini, marker: str, timeout_s: float = 15) -> None:
    """Wait until a request holding ``marker`` reached the fake Gemini."""
    deadline = time.monotonic() + timeout_s
    while not [r for r in fake.requests if marker.encode() in r.raw]:
        assert time.monotonic() < deadline, f"no request with {marker!r} reached the model"
        time.sleep(0.02)


def submit_photo(client: httpx.Client, **fields: str) -> str:
    response = client.post(
        "/api/v1/jobs",
        data={"kind": "photocard", "prompt": "a poster", **fields},
        files={"photo": ("me.png", fixture_bytes("astronaut.png"), "image/png")},
    )
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


def test_a_cancel_racing_a_running_summary_discards_its_late_answer(
    client: httpx.Client, db: Engine, fake_gemini: FakeGemini, stack: RefractStack
) -> None:
    fake_gemini.reset()
    marker = f"cancel-text-{uuid.uuid4().hex[:6]}"
    fake_gemini.script(marker, Reply.hang(1.5))  # within the 2 s model timeout
    created = client.post(
        "/api/v1/jobs",
        json={"kind": "video", "source": make_source(marker), "features": ["summary"]},
    ).json()
    # Canceled while its model call is out: the answer comes back after the cancel.
    wait_for_model_call(fake_gemini, marker)
    dropped = stack.logs().count(DROPPED)

    response = client.post(f"/api/v1/jobs/{created['id']}/cancel")

    assert response.status_code == 202, response.text
    assert response.json()["status"] == "canceled"
    # The model answers after the cancel; the worker drops what it would have stored.
    wait_for_log(stack, DROPPED, count=dropped + 1)
    job = client.get(f"/api/v1/jobs/{created['id']}").json()
    summary = job["features"]["summary"]
    assert (job["status"], summary["status"], summary["result"]) == ("canceled", "canceled", None)
    row = feature_rows(db, created["id"])["summary"]
    assert row["status"] == "canceled" and row["result"] is None and row["input_tokens"] is None


def test_a_cancel_racing_a_running_portrait_keeps_no_image(
    client: httpx.Client, db: Engine, fake_gemini: FakeGemini, stack: RefractStack
) -> None:
    fake_gemini.reset()
    fake_gemini.script(STYLIZE_PROMPT, Reply.hang(2.5))  # within the 5 s image timeout
    job_id = submit_photo(client, features="stylize")
    wait_for_model_call(fake_gemini, STYLIZE_PROMPT)
    assert client.get(f"/api/v1/jobs/{job_id}").json()["features"]["stylize"]["status"] == (
        "running"
    )

    dropped = stack.logs().count(DROPPED)
    body = client.post(f"/api/v1/jobs/{job_id}/cancel").json()
    assert body["status"] == "canceled"

    # The hanging answer arrives and is discarded: nothing is stored, no image is kept.
    wait_for_log(stack, DROPPED, count=dropped + 1)
    job = client.get(f"/api/v1/jobs/{job_id}").json()
    assert job["status"] == "canceled" and job["features"]["stylize"]["result"] is None
    assert feature_rows(db, job_id)["stylize"]["result"] is None
    assert roles(db, job_id) == ["photo"]


def test_a_failed_portrait_retried_succeeds_and_makes_a_new_card(
    client: httpx.Client, db: Engine, fake_gemini: FakeGemini
) -> None:
    fake_gemini.reset()
    fake_gemini.script(STYLIZE_PROMPT, Reply.client_error(400, message="Bad image."))
    job_id = submit_photo(client)
    failed = wait_for_job(client, job_id)
    assert failed["status"] == "partial", failed
    assert failed["features"]["stylize"]["status"] == "failed"
    assert failed["features"]["card"]["status"] == "skipped"

    response = client.post(f"/api/v1/jobs/{job_id}/features/stylize/retry")

    assert response.status_code == 202, response.text
    assert response.json()["features"]["card"]["status"] == "waiting"
    job = wait_for_job(client, job_id)
    assert job["status"] == "succeeded", job
    assert job["features"]["card"]["result"]["image_url"]
    rows = feature_rows(db, job_id)
    assert rows["card"]["started_at"] >= rows["stylize"]["finished_at"]
    assert rows["stylize"]["attempts"] == rows["card"]["attempts"] == 1
    first_card = job["features"]["card"]["result"]["artifact_id"]

    # An admin (auth is off here) may make it again: a new portrait, then a new card.
    assert client.post(f"/api/v1/jobs/{job_id}/features/stylize/retry").status_code == 202
    again = wait_for_job(client, job_id)
    assert again["status"] == "succeeded", again
    assert again["features"]["card"]["result"]["artifact_id"] != first_card
    assert client.get(again["features"]["card"]["result"]["image_url"]).status_code == 200
