"""Admission control: the backlog measured in Postgres, the verdict, and the intake flag."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from refract.core.models import FeatureRun, Job, utcnow
from refract.jobs.admission import (
    PAUSED_KEY,
    Backlog,
    BacklogGauge,
    intake_paused,
    measure,
    overloaded,
    pause_intake,
    resume_intake,
)
from refract.jobs.catalog import JobKind

MakeJob = Callable[..., Job]
VIDEO = ["summary", "comments", "thumbnail"]


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis[str]]:
    with redis.Redis.from_url(redis_url, decode_responses=True) as conn:
        yield conn


def set_features(sessions: sessionmaker[Session], job_id: uuid.UUID, **values: object) -> None:
    with sessions() as session:
        session.execute(update(FeatureRun).where(FeatureRun.job_id == job_id).values(**values))
        session.commit()


def test_the_backlog_is_queued_features_not_started(
    sessions: sessionmaker[Session], make_job: MakeJob
) -> None:
    make_job(JobKind.VIDEO, VIDEO)  # waiting
    old = make_job(JobKind.VIDEO, VIDEO)
    set_features(sessions, old.id, queued_at=utcnow() - timedelta(seconds=90))
    running = make_job(JobKind.VIDEO, VIDEO)
    set_features(sessions, running.id, status="running", started_at=utcnow())
    done = make_job(JobKind.VIDEO, VIDEO)
    set_features(sessions, done.id, status="succeeded", finished_at=utcnow())

    with sessions() as session:
        backlog = measure(session)

    assert backlog.waiting == 6  # the running and finished jobs are not waiting
    assert 85 <= backlog.oldest_wait_s <= 600  # generous: the database's clock
    assert backlog.drained_per_s == pytest.approx(3 / 60)


def test_features_finished_long_ago_do_not_count_as_draining(
    sessions: sessionmaker[Session], make_job: MakeJob
) -> None:
    done = make_job(JobKind.VIDEO, VIDEO)
    set_features(sessions, done.id, status="succeeded", finished_at=utcnow() - timedelta(hours=1))

    with sessions() as session:
        backlog = measure(session)

    assert backlog == Backlog(waiting=0, oldest_wait_s=0.0, drained_per_s=0.0)


def test_the_verdict_names_what_is_over() -> None:
    calm = Backlog(waiting=10, oldest_wait_s=5, drained_per_s=1)
    assert overloaded(calm, max_backlog=10, max_wait_s=120) is None
    crowded = overloaded(Backlog(11, 5, 1), max_backlog=10, max_wait_s=120)
    assert crowded is not None and "11 features" in crowded
    stuck = overloaded(Backlog(1, 121, 0), max_backlog=10, max_wait_s=120)
    assert stuck is not None and "121s" in stuck


@pytest.mark.parametrize(
    ("backlog", "seconds"),
    [
        (Backlog(100, 0, 2.0), 50),  # 100 features at 2 a second
        (Backlog(1, 0, 50.0), 1),  # never below a second
        (Backlog(100_000, 0, 0.05), 300),  # never beyond five minutes
        (Backlog(10, 200, 0.0), 30),  # nothing drains: a fixed, modest wait
    ],
)
def test_retry_after_follows_the_drain_rate_within_bounds(backlog: Backlog, seconds: int) -> None:
    assert backlog.retry_after_s() == seconds


def test_the_gauge_measures_once_per_period(
    sessions: sessionmaker[Session], make_job: MakeJob
) -> None:
    cached, fresh = BacklogGauge(max_age_s=3600), BacklogGauge(max_age_s=0)
    with sessions() as session:
        assert cached.read(session).waiting == fresh.read(session).waiting == 0
    make_job(JobKind.VIDEO, VIDEO)

    with sessions() as session:
        assert cached.read(session).waiting == 0  # within its period: no query
        assert fresh.read(session).waiting == 3


def test_intake_pauses_and_resumes_and_a_flushed_redis_means_open(
    client: redis.Redis[str],
) -> None:
    client.delete(PAUSED_KEY)
    assert intake_paused(client) is None

    pause_intake(client, by="ops")
    paused = intake_paused(client)
    assert paused is not None and paused.startswith("ops at ")

    resume_intake(client)
    assert intake_paused(client) is None
    pause_intake(client, by="ops")
    client.flushdb()
    assert intake_paused(client) is None


def test_intake_counts_as_open_when_redis_cannot_tell() -> None:
    dead: redis.Redis[str] = redis.Redis(
        host="127.0.0.1",
        port=1,
        socket_connect_timeout=0.5,
        retry=Retry(NoBackoff(), 0),
        decode_responses=True,
    )
    assert intake_paused(dead) is None
    dead.close()
