"""``/metrics`` on a real ``refract up``: what the Celery worker records (features, model
calls, tokens) is summed into what any of gunicorn's workers answers, through the
multiprocess directory the stack set up for all its children."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.bodies import make_source
from tests.support.fakes.gemini import FakeGemini, Reply
from tests.support.metrics import Samples, parse, value
from tests.support.stack import RefractStack, wait_for_job

pytestmark = pytest.mark.integration

TEXT_MODEL = "gemini-2.5-flash"


def scrape(client: httpx.Client) -> Samples:
    # Auth is off on the stack's loopback address: every caller is an admin.
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(response.text)


def test_the_workers_counters_show_on_the_api(
    stack: RefractStack, client: httpx.Client, fake_gemini: FakeGemini, submit_video: Any
) -> None:
    metrics_dir = stack.workdir / "state" / "metrics"
    before = scrape(client)
    duration = {"feature": "summary", "backend": "gemini", "status": "succeeded"}

    # The summary's first call is refused with a 429 (the worker retries it).
    fake_gemini.script("metrics-429", Reply.rate_limited(retry_delay="0.1s"))
    created = submit_video(make_source("metrics-429"), language="en")
    job = wait_for_job(client, created["id"])
    assert job["status"] == "succeeded", job

    # Every scrape, whichever gunicorn worker answers it, sums every process's files.
    for _ in range(4):
        after = scrape(client)

        def grew(name: str, **labels: str) -> float:
            return value(after, name, **labels) - value(before, name, **labels)  # noqa: B023

        assert grew("refract_jobs_submitted_total", kind="video") == 1
        assert grew("refract_feature_duration_seconds_count", **duration) == 1
        assert grew("refract_feature_duration_seconds_sum", **duration) > 0
        for feature in ("comments", "thumbnail"):
            labels = {**duration, "feature": feature}
            assert grew("refract_feature_duration_seconds_count", **labels) == 1
        assert grew("refract_model_calls_total", model=TEXT_MODEL, outcome="429") == 1
        assert grew("refract_model_calls_total", model=TEXT_MODEL, outcome="ok") == 3
        assert grew("refract_model_tokens_total", model=TEXT_MODEL, direction="input") > 0
        assert grew("refract_model_tokens_total", model=TEXT_MODEL, direction="output") > 0
        # Read at scrape time, from Postgres and the broker.
        assert value(after, "refract_jobs", status="succeeded") >= 1
        assert value(after, "refract_queue_depth", queue="text") == 0
        assert value(after, "refract_scrape_source_up", source="broker") == 1

    # The API's and the worker's processes each wrote their own files there.
    assert len(list(metrics_dir.glob("counter_*.db"))) >= 2
