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
from tasks.reconcile import UNSENT_GRACE, Timing, reconcile_once
from tasks.services import WorkerServices

REQUEUE_AFTER = timedelta(seconds=120)
HEARTBEAT_TIMEOUT = timedelta(seconds=30)
TIMING = Timing(requeue_after=REQUEUE_AFTER, heartbeat_timeout=HEARTBEAT_TIMEOUT)

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
    return reconcile_once(services, broker, timing=TIMING)


def ago(seconds: float) -> Any:
    return utcnow() - timedelta(seconds=seconds)


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


def finish(services: WorkerServices, job: Job, feature: str, when: Any = None) -> None:
    change_run(
        services, job, feature, status="succeeded", progress=1.0, finished_at=when or utcnow()
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


def test_queued_work_is_resent_with_backoff(
    services: WorkerServices, make_job: MakeJob, broker: Broker
) -> None:
    job = make_job(JobKind.VIDEO, ["summary"])
    # Sent three times already: the next resend waits 4 x REQUEUE_AFTER.
    change(services, job, enqueue_count=3, enqueued_at=utcnow() - 3 * REQUEUE_AFTER)
    assert sweep(services, broker) == []
    change(services, job, enqueued_at=utcnow() - 5 * REQUEUE_AFTER)
    assert sweep(services, broker) == [str(job.id)]
    assert sent_at(services, job)[1] == 4


def test_a_lost_chord_callback_sends_card_alone_once_its_inputs_are_long_done(
    services: WorkerServices, make_job: MakeJob, broker: Broker
) -> None:
    job = make_job(JobKind.PHOTOCARD, ["caption", "stylize", "card"])
    change(services, job, status="running", enqueued_at=ago(40), enqueue_count=1)
    # Inputs that finished a moment ago: the chord's callback is on its way.
    finish(services, job, "caption")
    finish(services, job, "stylize")
    assert sweep(services, broker) == []

    # Long after the last input finished, no callback came: the chord's state was lost
    # (it lives in Redis). It is sent without waiting out the backlog's requeue delay.
    finish(services, job, "caption", ago(45))
    finish(services, job, "stylize", ago(31))
    sweep(services, broker)

    assert broker.sent == [(str(job.id), ["card"])]


def test_card_goes_with_inputs_that_were_never_picked_up(
    services: WorkerServices, make_job: MakeJob, broker: Broker
) -> None:
    # Sending caption and stylize without card would lose the chord that runs card.
    job = make_job(JobKind.PHOTOCARD, ["caption", "stylize", "card"])
    finish(services, job, "caption")
    change(
        services, job, status="running", enqueued_at=utcnow() - 2 * REQUEUE_AFTER, enqueue_count=1
    )

    sweep(services, broker)

    assert broker.sent == [(str(job.id), ["stylize", "card"])]


def test_a_feature_whose_heartbeat_stopped_is_resent_at_once_and_a_live_one_never(
    services: WorkerServices, make_job: MakeJob, broker: Broker
) -> None:
    job = make_job(JobKind.VIDEO, ["summary", "comments", "thumbnail"])
    # Slow but alive: started an hour ago, beat a moment ago.
    change_run(
        services,
        job,
        "summary",
        status="running",
        task_id="a",
        started_at=ago(3600),
        heartbeat_at=utcnow(),
    )
    # Started a moment ago, but its heartbeat stopped: its worker died.
    change_run(
        services,
        job,
        "comments",
        status="running",
        task_id="b",
        started_at=ago(35),
        heartbeat_at=ago(31),
    )
    finish(services, job, "thumbnail")
    # Sent 40 s ago: well inside the backlog's requeue delay, past a heartbeat timeout.
    change(services, job, status="running", enqueued_at=ago(40), enqueue_count=1)

    sweep(services, broker)

    assert broker.sent == [(str(job.id), ["comments"])]


def test_a_recovery_send_is_not_repeated_before_the_copy_could_start(
    services: WorkerServices, make_job: MakeJob, broker: Broker
) -> None:
    job = make_job(JobKind.VIDEO, ["summary"])
    change_run(
        services,
        job,
        "summary",
        status="running",
        task_id="b",
        started_at=ago(60),
        heartbeat_at=ago(45),
    )
    change(services, job, status="running", enqueued_at=ago(5), enqueue_count=2)

    assert sweep(services, broker) == []


def test_final_jobs_and_jobs_with_nothing_pending_are_left_alone(
    services: WorkerServices, make_job: MakeJob, broker: Broker
) -> None:
    done = make_job(JobKind.VIDEO, ["summary"])
    finish(services, done, "summary")
    change(services, done, status="succeeded", created_at=ago(3600))
    busy = make_job(JobKind.VIDEO, ["summary"])
    change_run(
        services,
        busy,
        "summary",
        status="running",
        task_id="a",
        started_at=utcnow(),
        heartbeat_at=utcnow(),
    )
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
