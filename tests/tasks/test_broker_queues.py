"""Reading the Redis broker: which features already have a message waiting or reserved,
and the reconciler leaving those alone (no duplicate messages under a backlog)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
import redis
from celery import Celery
from kombu import Consumer, Message, Queue
from sqlalchemy import update

from refract.core.models import Job, utcnow
from refract.core.settings import Settings
from refract.jobs.catalog import ALL_QUEUES, IMAGE_QUEUE, JobKind
from refract.jobs.celery_app import create_celery_app
from refract.jobs.dispatch import enqueue
from refract.jobs.queues import broker_client, waiting_features
from tasks.reconcile import Timing, reconcile_once
from tasks.services import WorkerServices

MakeJob = Callable[..., Job]
TIMING = Timing(requeue_after=timedelta(seconds=120), heartbeat_timeout=timedelta(seconds=30))


@pytest.fixture
def app(worker_settings: Settings) -> Iterator[Celery]:
    """A producer on the test's Redis, as the API's (the broker is the Redis URL)."""
    celery = create_celery_app(worker_settings, send_only=True)
    yield celery
    celery.close()


@pytest.fixture
def broker(worker_settings: Settings) -> Iterator[redis.Redis[bytes]]:
    client = broker_client(worker_settings.effective_broker_url)
    assert client is not None
    yield client
    client.close()


def test_messages_waiting_in_their_queues_are_found(
    app: Celery, broker: redis.Redis[bytes]
) -> None:
    video, card = uuid.uuid4(), uuid.uuid4()
    enqueue(app, video, ["summary", "comments", "thumbnail"])
    enqueue(app, card, ["caption", "stylize", "card"])

    found = waiting_features(broker, ALL_QUEUES)

    # A chord's callback has no message of its own until its inputs are done.
    assert found == {
        (str(video), "summary"),
        (str(video), "comments"),
        (str(video), "thumbnail"),
        (str(card), "caption"),
        (str(card), "stylize"),
    }


def test_a_message_a_worker_took_counts_only_while_recent(
    app: Celery, broker: redis.Redis[bytes]
) -> None:
    # Taken moments ago, a message is on its way to a worker's thread; taken long ago, it
    # proves nothing about liveness (its worker may have died with it): heartbeats decide.
    job = uuid.uuid4()
    enqueue(app, job, ["caption"])
    assert waiting_features(broker, ALL_QUEUES) == {(str(job), "caption")}
    taken: list[Message] = []
    with app.connection_for_read() as connection:
        queue = Queue(IMAGE_QUEUE, channel=connection.default_channel)
        with Consumer(connection, [queue], callbacks=[lambda _b, m: taken.append(m)]):
            connection.drain_events(timeout=5)
        assert broker.llen(IMAGE_QUEUE) == 0 and broker.hlen("unacked") == 1

        assert waiting_features(broker, ALL_QUEUES) == set()
        recent = waiting_features(broker, ALL_QUEUES, taken_within_s=60)
        assert recent == {(str(job), "caption")}
        later = time.time() + 61
        assert waiting_features(broker, ALL_QUEUES, taken_within_s=60, now=later) == set()

        taken[0].ack()
        assert waiting_features(broker, ALL_QUEUES, taken_within_s=60) == set()


def test_an_unreadable_broker_rules_nothing_out() -> None:
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    assert waiting_features(dead, ALL_QUEUES) is None
    dead.close()
    assert broker_client("amqp://guest@127.0.0.1//") is None


def test_the_reconciler_resends_only_what_has_no_message(
    services: WorkerServices,
    make_job: MakeJob,
    app: Celery,
    broker: redis.Redis[bytes],
) -> None:
    # Two jobs sent long ago and still queued (a backlog): one's messages wait their
    # turn, the other's were lost (Redis restarted empty, say).
    waiting = make_job(JobKind.VIDEO, ["summary", "comments"])
    lost = make_job(JobKind.PHOTOCARD, ["caption", "stylize", "card"])
    with services.session() as session:
        session.execute(
            update(Job)
            .where(Job.id.in_([waiting.id, lost.id]))
            .values(enqueued_at=utcnow() - 3 * TIMING.requeue_after, enqueue_count=1)
        )
    enqueue(app, waiting.id, ["summary", "comments"])
    sent: list[tuple[str, list[str]]] = []

    resent = reconcile_once(
        services,
        lambda job_id, features: sent.append((str(job_id), features)),
        timing=TIMING,
        in_broker=lambda: waiting_features(broker, ALL_QUEUES),
    )

    assert resent == [str(lost.id)]
    assert sent == [(str(lost.id), ["caption", "stylize", "card"])]
    # Without a view of the broker, the timers alone decide (both would be resent).
    sent.clear()
    with services.session() as session:
        session.execute(
            update(Job).values(enqueued_at=utcnow() - 3 * TIMING.requeue_after, enqueue_count=1)
        )
    reconcile_once(services, lambda j, f: sent.append((str(j), f)), timing=TIMING)
    assert sorted(job for job, _ in sent) == sorted([str(waiting.id), str(lost.id)])
