"""Heartbeats: one statement refreshes every run a process holds, and only while it owns
its feature."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import select, update

from refract.core.models import FeatureRun, Job, utcnow
from refract.jobs.catalog import JobKind
from tasks.heartbeat import Beat
from tasks.services import WorkerServices

MakeJob = Callable[..., Job]


def claimed(services: WorkerServices, job: Job, feature: str, task_id: str) -> None:
    with services.session() as session:
        session.execute(
            update(FeatureRun)
            .where(FeatureRun.job_id == job.id, FeatureRun.feature == feature)
            .values(status="running", task_id=task_id, heartbeat_at=utcnow() - timedelta(hours=1))
        )


def beats(services: WorkerServices, job: Job) -> dict[str, object]:
    with services.session() as session:
        rows = session.execute(
            select(FeatureRun.feature, FeatureRun.heartbeat_at).where(FeatureRun.job_id == job.id)
        ).all()
    return {feature: when for feature, when in rows}


def test_one_beat_refreshes_every_run_held_and_no_other(
    services: WorkerServices, make_job: MakeJob
) -> None:
    job = make_job(JobKind.VIDEO, ["summary", "comments", "thumbnail"])
    for feature in ("summary", "comments", "thumbnail"):
        claimed(services, job, feature, f"task-{feature}")
    before = beats(services, job)
    services.heartbeats.add(Beat(job.id, "summary", "task-summary"))
    services.heartbeats.add(Beat(job.id, "comments", "task-comments"))
    # This process thinks it holds thumbnail, but another run took the claim over.
    services.heartbeats.add(Beat(job.id, "thumbnail", "task-that-lost-it"))

    assert services.heartbeats.beat_once() == 2

    after = beats(services, job)
    assert after["summary"] != before["summary"] and after["comments"] != before["comments"]
    assert after["thumbnail"] == before["thumbnail"]


def test_the_thread_keeps_beating_until_the_run_is_removed(
    services: WorkerServices, make_job: MakeJob
) -> None:
    job = make_job(JobKind.VIDEO, ["summary"])
    claimed(services, job, "summary", "task-1")
    beat = Beat(job.id, "summary", "task-1")
    services.heartbeats.add(beat)
    time.sleep(services.settings.heartbeat_interval_s * 6)
    first = beats(services, job)["summary"]
    time.sleep(services.settings.heartbeat_interval_s * 6)
    assert beats(services, job)["summary"] != first

    services.heartbeats.remove(beat)
    time.sleep(services.settings.heartbeat_interval_s * 3)  # a beat in flight may land
    last = beats(services, job)["summary"]
    time.sleep(services.settings.heartbeat_interval_s * 6)
    assert beats(services, job)["summary"] == last


def test_nothing_held_touches_nothing(services: WorkerServices) -> None:
    assert services.heartbeats.beat_once() == 0
    services.heartbeats.remove(Beat(uuid.uuid4(), "summary", "never-added"))
