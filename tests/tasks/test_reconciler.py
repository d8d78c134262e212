"""The reconciler: what it resends, when, and what it leaves alone.

``reconcile_once`` is called in-process with a ``send`` that records what would go to
the broker (or fails like a broker that is down); jobs are set up in Postgres as the
failures it exists for would leave them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from refract.core.models import FeatureRun, Job, utcnow
from refract.jobs.catalog import JobKind
from tasks.reconcile import UNSENT_GRACE, reconcile_once
from tasks.services import WorkerServices

REQUEUE_AFTER = timedelta(seconds=120)
STALE_AFTER = timedelta(seconds=900)

MakeJob = Callable[..., Job]


class Broker:
    """Records what the reconciler sends; ``down`` makes every send fail."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list[str]]] = []
        self.down = False

    def __call__(self, job_id: uuid.UUID, features: list[str]) -> None:
        if self.down:
            raise ConnectionError("broker unreachable")
        self.sent.append((str(job_id), list(features)))


@pytest.fixture
def broker() -> Broker:
    return Broker()


def sweep(services: WorkerServices, broker: Broker) -> list[str]:
    return reconcile_once(services, broker, requeue_after=REQUEUE_AFTER, stale_after=STALE_AFTER)


def change(services: WorkerServices, job: Job, **values: Any) -> None:
    with services.session() as session:
        session.execute(update(Job).where(Job.id == job.id).values(**values))


def change_run(services: WorkerServices, job: Job, feature: str, **values: Any) -> None:
    with services.session() as session:
        session.execute(
            update(FeatureRun)
            .where(FeatureRun.job_id == job.id, FeatureRun.feature == feature)
            .values(**values)
        )


def sent_at(services: WorkerServices, job: Job) -> tuple[Any, int]:
    with services.session() as session:
        row = session.get(Job, job.id)
        assert row is not None
        return row.enqueued_at, row.enqueue_count


def test_a_job_whose_enqueue_was_lost_is_sent_after_the_grace(
    services: WorkerServices, make_job: MakeJob, broker: Broker
) -> None:
    fresh = make_job(JobKind.VIDEO, ["summary", "comments"])
    lost = make_job(JobKind.VIDEO, ["summary", "comments"])
    change(services, lost, created_at=utcnow() - UNSENT_GRACE - timedelta(seconds=1))

    assert sweep(services, broker) == [str(lost.id)]
    assert broker.sent == [(str(lost.id), ["summary", "comments"])]
    enqueued_at, count = sent_at(services, lost)
    assert enqueued_at is not None and count == 1
    assert sent_at(services, fresh) == (None, 0)


def test_a_sent_job_is_resent_with_backoff(
    services: WorkerServices, make_job: MakeJob, broker: Broker
) -> None:
    job = make_job(JobKind.VIDEO, ["summary"])
    # Sent three times already: the next resend waits 4 x REQUEUE_AFTER.
    change(services, job, enqueue_count=3, enqueued_at=utcnow() - 3 * REQUEUE_AFTER)
    assert sweep(services, broker) == []
    change(services, job, enqueued_at=utcnow() - 5 * REQUEUE_AFTER)
    assert sweep(services, broker) == [str(job.id)]
    assert sent_at(services, job)[1] == 4


def test_a_lost_chord_callback_sends_card_alone(
    services: WorkerServices, make_job: MakeJob, broker: Broker
) -> None:
    job = make_job(JobKind.PHOTOCARD, ["caption", "stylize", "card"])
    for feature in ("caption", "stylize"):
        change_run(services, job, feature, status="succeeded", progress=1.0, finished_at=utcnow())
    change(
        services, job, status="running", enqueued_at=utcnow() - 2 * REQUEUE_AFTER, enqueue_count=1
    )

    sweep(services, broker)

    assert broker.sent == [(str(job.id), ["card"])]


def test_card_goes_with_inputs_that_were_never_picked_up(
    services: WorkerServices, make_job: MakeJob, broker: Broker
) -> None:
    # Sending caption and stylize without card would lose the chord that runs card.
    job = make_job(JobKind.PHOTOCARD, ["caption", "stylize", "card"])
    change_run(services, job, "caption", status="succeeded", progress=1.0, finished_at=utcnow())
    change(
        services, job, status="running", enqueued_at=utcnow() - 2 * REQUEUE_AFTER, enqueue_count=1
    )

    sweep(services, broker)

    assert broker.sent == [(str(job.id), ["stylize", "card"])]


def test_a_stale_running_feature_is_resent_and_a_live_one_is_not(
    services: WorkerServices, make_job: MakeJob, broker: Broker
) -> None:
    job = make_job(JobKind.VIDEO, ["summary", "comments", "thumbnail"])
    change_run(services, job, "summary", status="running", task_id="a", started_at=utcnow())
    change_run(
        services,
        job,
        "comments",
        status="running",
        task_id="b",
        started_at=utcnow() - STALE_AFTER - timedelta(seconds=1),
    )
    change_run(services, job, "thumbnail", status="succeeded", progress=1.0, finished_at=utcnow())
    change(
        services, job, status="running", enqueued_at=utcnow() - 2 * REQUEUE_AFTER, enqueue_count=1
    )

    sweep(services, broker)

    assert broker.sent == [(str(job.id), ["comments"])]


def test_final_jobs_and_jobs_with_nothing_pending_are_left_alone(
    services: WorkerServices, make_job: MakeJob, broker: Broker
) -> None:
    done = make_job(JobKind.VIDEO, ["summary"])
    change_run(services, done, "summary", status="succeeded", progress=1.0, finished_at=utcnow())
    change(services, done, status="succeeded", created_at=utcnow() - timedelta(hours=1))
    busy = make_job(JobKind.VIDEO, ["summary"])
    change_run(services, busy, "summary", status="running", task_id="a", started_at=utcnow())
    change(
        services, busy, status="running", enqueued_at=utcnow() - 2 * REQUEUE_AFTER, enqueue_count=1
    )

    assert sweep(services, broker) == []
    assert broker.sent == []


def test_a_broker_still_down_leaves_the_job_for_the_next_round(
    services: WorkerServices, make_job: MakeJob, broker: Broker
) -> None:
    job = make_job(JobKind.VIDEO, ["summary"])
    change(services, job, created_at=utcnow() - UNSENT_GRACE - timedelta(seconds=1))
    broker.down = True

    assert sweep(services, broker) == []
    assert sent_at(services, job) == (None, 0)

    broker.down = False
    assert sweep(services, broker) == [str(job.id)]
