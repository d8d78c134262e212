"""Lost work, end to end through beat and a real worker: the reconciler re-sends a job
whose enqueue was lost, and a card whose chord callback never came.

What a redelivered or duplicate message does is the runner's logic, tested in-process in
``tests/tasks``.
"""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from refract.core.db import build_engine
from refract.core.models import FeatureRun, Job, utcnow
from refract.jobs.catalog import JobKind
from refract.jobs.store import NewJob, add_job
from tests.support.bodies import make_source
from tests.support.stack import RefractStack, wait_for_job

# The reconciler sends a card whose inputs finished more than a heartbeat timeout ago:
# heartbeats every second, lost after four (not the default 30 s of waiting).
STACK_ENV = {"REFRACT_HEARTBEAT_INTERVAL_S": "1", "REFRACT_HEARTBEAT_TIMEOUT_S": "4"}

pytestmark = pytest.mark.integration


def test_a_job_whose_enqueue_was_lost_is_enqueued_by_the_reconciler(
    client: httpx.Client, database_url: str, stack: RefractStack
) -> None:
    # Committed but never sent: what a broker outage at submit time leaves behind.
    engine = build_engine(database_url)
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


def test_card_is_never_left_waiting_when_an_input_task_is_lost(
    client: httpx.Client, database_url: str
) -> None:
    # caption and stylize finished but the chord's callback never came (lost message):
    # the reconciler sends card on its own.
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
