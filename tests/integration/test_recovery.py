"""Lost and duplicated work: the reconciler re-sends what was never enqueued, and a
redelivered message for a finished feature does nothing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from celery import Celery
from sqlalchemy.engine import Engine

from refract.core.db import build_engine
from refract.core.models import Job
from refract.core.settings import Settings
from refract.jobs.catalog import JobKind
from refract.jobs.celery_app import create_celery_app
from refract.jobs.store import NewJob, add_job
from tests.fakes.gemini import FakeGemini
from tests.integration.conftest import feature_rows, wait_for_job
from tests.integration.test_pipeline import make_source
from tests.support.stack import RefractStack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def celery_app(stack: RefractStack) -> Iterator[Celery]:
    """A Celery producer on the stack's broker, like a second API process."""
    settings = Settings(
        database_url=stack.env["REFRACT_DATABASE_URL"], redis_url=stack.env["REFRACT_REDIS_URL"]
    )
    app = create_celery_app(settings)
    yield app
    app.close()


def test_a_job_whose_enqueue_was_lost_is_enqueued_by_the_reconciler(
    client: httpx.Client, database_url: str, stack: RefractStack
) -> None:
    # Committed but never sent: what a broker outage at submit time leaves behind.
    engine = build_engine(database_url)
    from sqlalchemy.orm import Session

    with Session(engine) as session:
        job = add_job(
            session,
            NewJob(JobKind.VIDEO, ["summary", "comments"], "en", {"source": make_source("lost")}),
        )
        job_id = str(job.id)
        session.commit()
    engine.dispose()
    assert client.get(f"/api/v1/jobs/{job_id}").json()["status"] == "queued"
    finished = wait_for_job(client, job_id, timeout_s=60)
    assert finished["status"] == "succeeded", finished
    assert "reconcile_requeued" in stack.logs()


def test_a_redelivered_message_for_a_finished_feature_does_nothing(
    client: httpx.Client,
    db: Engine,
    fake_gemini: FakeGemini,
    celery_app: Celery,
    submit_video: Any,
) -> None:
    job = wait_for_job(client, submit_video(make_source("redelivered"))["id"])
    before = feature_rows(db, job["id"])["summary"]
    requests_before = len(fake_gemini.requests)
    etag = client.get(f"/api/v1/jobs/{job['id']}").headers["etag"]

    outcome = celery_app.send_task("refract.text.summary", args=[job["id"]]).get(timeout=30)

    assert outcome["outcome"] == "noop"
    after = feature_rows(db, job["id"])["summary"]
    assert after["attempts"] == before["attempts"] == 1
    assert after["result"] == before["result"]
    assert after["finished_at"] == before["finished_at"]
    time.sleep(0.5)
    assert len(fake_gemini.requests) == requests_before
    assert client.get(f"/api/v1/jobs/{job['id']}").headers["etag"] == etag


def test_card_is_never_left_waiting_when_an_input_task_is_lost(
    client: httpx.Client, database_url: str
) -> None:
    # caption and stylize finished but the chord's callback never came (lost message):
    # the reconciler sends card on its own.
    from sqlalchemy import select, update
    from sqlalchemy.orm import Session

    from refract.core.models import FeatureRun, utcnow

    engine = build_engine(database_url)
    with Session(engine) as session:
        job = add_job(session, NewJob(JobKind.PHOTOCARD, ["caption", "stylize", "card"], "en", {}))
        session.execute(
            update(FeatureRun)
            .where(FeatureRun.job_id == job.id, FeatureRun.feature.in_(["caption", "stylize"]))
            .values(status="failed", error_code="model_timeout", progress=1.0, finished_at=utcnow())
        )
        session.execute(update(Job).where(Job.id == job.id).values(status="running"))
        session.commit()
        job_id = str(job.id)
        assert session.scalars(select(Job.status).where(Job.id == job.id)).one() == "running"
    engine.dispose()
    finished = wait_for_job(client, job_id, timeout_s=60)
    assert finished["features"]["card"]["status"] == "skipped"
    assert finished["status"] == "failed"


def test_a_message_for_a_job_that_no_longer_exists_is_dropped(celery_app: Celery) -> None:
    import uuid

    outcome = celery_app.send_task("refract.text.summary", args=[str(uuid.uuid4())]).get(timeout=30)
    assert outcome["outcome"] == "noop" and outcome["reason"] == "no such job"
