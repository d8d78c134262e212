"""Progress reports written by the worker's writer thread (:mod:`tasks.reporting`).

A worker's runs queue their reports and go on; the writer writes them, one transaction
per job, only while the run owns its feature, and a cancel it finds stops the run at its
next report. ``execute_feature`` runs in-process with the stub backend and a writer.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select, update

from refract.core.models import FeatureRun, Job
from refract.gateway.base import ModelReply
from refract.jobs.catalog import JobKind
from refract.jobs.control import cancel_job
from tasks.reporting import RunKey, progress_writer
from tasks.runner import FeatureContext, execute_feature
from tasks.services import WorkerServices
from tasks.summary import summarize
from tests.support.stub_backend import StubBackend

MakeJob = Callable[..., Job]
SOURCE = {"title": "Coffee", "description": "How to brew.", "transcript": [], "comments": []}


def video_job(make_job: MakeJob, features: list[str] | None = None) -> str:
    return str(make_job(JobKind.VIDEO, features or ["summary"], {"source": SOURCE}).id)


def runs(services: WorkerServices, job_id: str) -> dict[str, FeatureRun]:
    with services.session() as session:
        found = session.scalars(select(FeatureRun).where(FeatureRun.job_id == uuid.UUID(job_id)))
        return {run.feature: run for run in found}


def version(services: WorkerServices, job_id: str) -> int:
    with services.session() as session:
        job = session.get(Job, uuid.UUID(job_id))
        assert job is not None
        return job.version


def test_a_report_is_written_by_the_writer_and_published(
    services: WorkerServices, make_job: MakeJob, backend: StubBackend
) -> None:
    job_id = video_job(make_job)
    writer = progress_writer(services)
    seen: list[float] = []

    def work(ctx: FeatureContext) -> ModelReply:
        ctx.report(0.3, "material ready")
        assert writer.flush()
        seen.append(runs(services, job_id)["summary"].progress)
        return summarize(ctx)

    outcome = execute_feature(services, job_id, "summary", "task-1", work, writer=writer)

    assert outcome["outcome"] == "succeeded"
    assert seen == [0.3]
    steps = [e.data.get("step") for e in services.bus.read(job_id) if e.type == "feature"]
    assert "material ready" in steps


def test_reports_not_yet_written_are_merged_into_one_write_per_job(
    services: WorkerServices, make_job: MakeJob
) -> None:
    job_id = video_job(make_job, ["summary", "comments"])
    key = uuid.UUID(job_id)
    with services.session() as session:
        session.execute(
            update(FeatureRun)
            .where(FeatureRun.job_id == key)
            .values(status="running", task_id="task-" + FeatureRun.feature)
        )
    before = version(services, job_id)
    writer = progress_writer(services)
    # Held back until the writer is told to go: the three reports wait together.
    with writer._changed:
        writer.submit(RunKey(key, "summary", "task-summary"), 0.3, "material ready")
        writer.submit(RunKey(key, "summary", "task-summary"), 0.4, "asking the model")
        writer.submit(RunKey(key, "comments", "task-comments"), 0.3, "comments ready")
    assert writer.flush()

    found = runs(services, job_id)
    assert (found["summary"].progress, found["comments"].progress) == (0.4, 0.3)
    assert version(services, job_id) == before + 1  # one transaction for both features
    steps = [e.data.get("step") for e in services.bus.read(job_id) if e.type == "feature"]
    assert steps[-2:] == ["asking the model", "comments ready"]
    for feature in ("summary", "comments"):
        writer.finish(RunKey(key, feature, f"task-{feature}"))


def test_a_run_that_lost_its_claim_writes_no_progress(
    services: WorkerServices, make_job: MakeJob
) -> None:
    job_id = video_job(make_job)
    key = uuid.UUID(job_id)
    with services.session() as session:
        session.execute(
            update(FeatureRun)
            .where(FeatureRun.job_id == key)
            .values(status="running", task_id="task-2", progress=0.05)
        )
    before = version(services, job_id)
    writer = progress_writer(services)

    writer.submit(RunKey(key, "summary", "task-1"), 0.5, "halfway")
    assert writer.flush()

    assert runs(services, job_id)["summary"].progress == 0.05
    assert version(services, job_id) == before  # nothing written, nothing published
    writer.finish(RunKey(key, "summary", "task-1"))


def test_a_cancel_found_by_the_writer_stops_the_run_at_its_next_report(
    services: WorkerServices, make_job: MakeJob, backend: StubBackend
) -> None:
    job_id = video_job(make_job)
    writer = progress_writer(services)
    steps: list[str] = []

    def work(ctx: FeatureContext) -> Any:
        ctx.report(0.2, "reading")  # queued: the run goes on
        steps.append("reading")
        with services.session() as session:
            cancel_job(session, services.bus, uuid.UUID(job_id))
        ctx.report(0.3, "still reading")
        assert writer.flush()  # the writer finds the feature canceled
        ctx.report(0.4, "asking the model")
        steps.append("asked")  # never reached
        return summarize(ctx)

    outcome = execute_feature(services, job_id, "summary", "task-1", work, writer=writer)

    assert outcome["outcome"] == "noop" and outcome["reason"] == "canceled"
    assert steps == ["reading"] and backend.calls == []
    run = runs(services, job_id)["summary"]
    assert (run.status, run.result) == ("canceled", None)
    assert not writer.canceled(RunKey(uuid.UUID(job_id), "summary", "task-1"))  # forgotten


def test_a_report_not_yet_written_is_published_with_the_outcome(
    services: WorkerServices, make_job: MakeJob, backend: StubBackend
) -> None:
    job_id = video_job(make_job)
    writer = progress_writer(services)

    def work(ctx: FeatureContext) -> ModelReply:
        ctx.report(0.4, "asking the model")
        return summarize(ctx)

    # The writer is held off for the whole run: the report is still queued at its end.
    with writer._changed:
        outcome = execute_feature(services, job_id, "summary", "task-1", work, writer=writer)
    assert writer.flush()

    assert outcome["outcome"] == "succeeded"
    seen = [
        (e.data.get("step"), e.data["progress"])
        for e in services.bus.read(job_id)
        if e.type == "feature"
    ]
    assert seen[-2:] == [("asking the model", 0.4), ("finished", 1.0)]
    assert runs(services, job_id)["summary"].progress == 1.0


def test_a_report_being_written_is_committed_before_the_outcome(
    services: WorkerServices,
    make_job: MakeJob,
    backend: StubBackend,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The race that used to drop a step: the writer has taken the report, the run
    finishes before that write commits. The outcome now waits for the write."""
    job_id = video_job(make_job)
    writer = progress_writer(services)
    writing, release = threading.Event(), threading.Event()
    write = writer._write

    def slow_write(job: uuid.UUID, reports: Any) -> None:
        writing.set()
        assert release.wait(10)
        write(job, reports)

    monkeypatch.setattr(writer, "_write", slow_write)
    finished: list[float] = []

    def work(ctx: FeatureContext) -> ModelReply:
        ctx.report(0.4, "asking the model")
        assert writing.wait(10)  # taken by the writer, not written yet
        return summarize(ctx)

    def release_later() -> None:
        assert writing.wait(10)
        time.sleep(0.2)  # the run reaches its outcome meanwhile, and must wait
        finished.append(time.monotonic())
        release.set()

    releaser = threading.Thread(target=release_later)
    releaser.start()
    outcome = execute_feature(services, job_id, "summary", "task-1", work, writer=writer)
    stored_at = time.monotonic()
    releaser.join()

    assert outcome["outcome"] == "succeeded"
    assert finished and stored_at > finished[0]
    seen = [
        (e.data.get("step"), e.data["progress"])
        for e in services.bus.read(job_id)
        if e.type == "feature"
    ]
    assert seen[-2:] == [("asking the model", 0.4), ("finished", 1.0)]
