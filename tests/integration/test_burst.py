"""A crowd's burst: 200 jobs at once, a backlog longer than the reconciler's patience,
and still (almost) no duplicate messages.

Every job waits its turn behind the others for longer than ``REFRACT_REQUEUE_AFTER_S``;
the reconciler, which resends queued work it thinks lost, must see that the messages
still wait in their queue and leave them alone. A resend is counted by the job's
``enqueue_count`` (one per send). The goal is under 1 % duplicates; nothing else may
resend the work of a live run either (no feature runs twice).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import create_engine, func, select

from refract.core.models import FeatureRun, Job
from tests.support.bodies import inline_source
from tests.support.fakes.gemini import FakeGemini
from tests.support.services import PostgresServer, RedisDb, RedisServer
from tests.support.stack import RefractStack, wait_for_job

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

JOBS = 200


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    fake_gemini: FakeGemini,
    postgres_server: PostgresServer,
    redis_server: RedisServer,
) -> Iterator[RefractStack]:
    """A small worker (2 threads) behind a slow model, and an impatient reconciler: the
    burst arrives faster than it drains, so most jobs wait many times the reconciler's
    patience."""
    fake_gemini.latency_s = 0.1
    with (
        postgres_server.fresh_database("refract_burst") as database_url,
        redis_server.fresh_database(RedisDb.STACK) as redis_url,
    ):
        workdir = tmp_path_factory.mktemp("burst")
        env = {
            "REFRACT_DATABASE_URL": database_url,
            "REFRACT_REDIS_URL": redis_url,
            "REFRACT_AUTH": "off",
            "REFRACT_MODEL_BACKEND": "gemini",
            "GEMINI_API_KEY": "test-key",
            "REFRACT_GEMINI_BASE_URL": fake_gemini.url,
            "REFRACT_MEDIA_DIR": str(workdir / "media"),
            "REFRACT_WORKER_CONCURRENCY": "2",
            "REFRACT_GEMINI_RPM": "0",
            "REFRACT_SUBMIT_RATE": "100000/min",
            "REFRACT_RECONCILE_INTERVAL_S": "1",
            # Far shorter than the backlog's wait: every queued job looks late to it.
            "REFRACT_REQUEUE_AFTER_S": "1",
            "REFRACT_YOUTUBE_TRANSCRIPTS": "false",
        }
        with RefractStack(env, workdir) as running:
            yield running
    fake_gemini.latency_s = 0.0


def test_a_burst_behind_a_backlog_gets_under_one_percent_duplicates(
    stack: RefractStack, client: httpx.Client, fake_gemini: FakeGemini
) -> None:
    fake_gemini.reset()

    def submit(n: int) -> str:
        # A light body (no inline thumbnail), so that the burst arrives all at once.
        source = {**inline_source(), "title": f"burst {n}"}
        body = {"kind": "video", "features": ["summary"], "source": source}
        response = client.post(
            "/api/v1/jobs", json=body, headers={"Idempotency-Key": f"burst-{uuid.uuid4()}"}
        )
        assert response.status_code == 202, response.text
        job_id: str = response.json()["id"]
        return job_id

    with ThreadPoolExecutor(max_workers=8) as pool:
        job_ids = list(pool.map(submit, range(JOBS)))
    for job_id in job_ids:
        assert wait_for_job(client, job_id, timeout_s=240)["status"] == "succeeded"

    engine = create_engine(stack.env["REFRACT_DATABASE_URL"])
    try:
        with engine.connect() as connection:
            sends = connection.scalar(select(func.sum(Job.enqueue_count)))
            attempts = connection.scalar(select(func.sum(FeatureRun.attempts)))
    finally:
        engine.dispose()
    duplicates = int(sends or 0) - JOBS
    print(f"burst: {JOBS} jobs, {duplicates} sent again ({100 * duplicates / JOBS:.1f} %)")
    assert duplicates / JOBS < 0.01, f"{duplicates} of {JOBS} jobs were sent again"
    # No feature ran twice, and the model was asked once per job.
    assert attempts == JOBS
    assert len(fake_gemini.requests) == JOBS
