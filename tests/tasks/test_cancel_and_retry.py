"""The worker's side of cancel and retry: a canceled feature's run stops and records
nothing, its messages and chord callbacks are no-ops, the reconciler leaves it alone, and a
retried feature runs again and sends the card that needs it.

``execute_feature`` runs in-process with the stub backend, as in ``test_runner.py``.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from refract.core.errors import FeatureError, RetryableModelError
from refract.core.models import Artifact, FeatureRun, Job, utcnow
from refract.gateway.base import ModelReply
from refract.gateway.retry import RetryPolicy, call_with_retries
from refract.imaging.storage import DiskStore, store_image
from refract.jobs.catalog import JobKind
from refract.jobs.control import cancel_job, retry_feature
from tasks.caption import describe
from tasks.card import compose
from tasks.reconcile import Timing, reconcile_once
from tasks.runner import FeatureContext, execute_feature
from tasks.services import WorkerServices
from tasks.stylize import restyle
from tasks.summary import summarize
from tests.support.images import fixture_bytes
from tests.support.stub_backend import StubBackend

MakeJob = Callable[..., Job]
SOURCE = {"title": "Coffee", "description": "How to brew.", "transcript": [], "comments": []}


def video_job(make_job: MakeJob) -> str:
    return str(make_job(JobKind.VIDEO, ["summary"], {"source": SOURCE}).id)


def photo_job(make_job: MakeJob, services: WorkerServices) -> str:
    """A photo card job whose photo (a real face) is stored as the API stores it."""
    job = make_job(JobKind.PHOTOCARD, ["caption", "stylize", "card"], {"prompt": "stars"})
    with services.session() as session:
        artifact = store_image(
            session,
            services.store,
            job_id=job.id,
            role="photo",
            data=fixture_bytes("astronaut.png"),
            content_type="image/png",
        )
        session.flush()
        session.execute(
            update(Job)
            .where(Job.id == job.id)
            .values(input={"prompt": "stars", "photo_artifact_id": str(artifact.id)})
        )
    return str(job.id)


def runs(services: WorkerServices, job_id: str) -> dict[str, FeatureRun]:
    with services.session() as session:
        found = session.scalars(select(FeatureRun).where(FeatureRun.job_id == uuid.UUID(job_id)))
        return {run.feature: run for run in found}


def cancel(services: WorkerServices, job_id: str) -> Job:
    with services.session() as session:
        return cancel_job(session, services.bus, uuid.UUID(job_id))


def retry(services: WorkerServices, job_id: str, feature: str) -> list[str]:
    with services.session() as session:
        return retry_feature(session, services.bus, uuid.UUID(job_id), feature, admin=True)


def images(services: WorkerServices, job_id: str) -> list[str]:
    with services.session() as session:
        return list(
            session.scalars(select(Artifact.role).where(Artifact.job_id == uuid.UUID(job_id)))
        )


def test_a_late_answer_of_a_canceled_feature_is_discarded_with_its_image(
    services: WorkerServices, make_job: MakeJob, backend: StubBackend
) -> None:
    job_id = photo_job(make_job, services)

    def canceled_meanwhile(_feature: str) -> None:
        # The model answers after the job was canceled (its last step was reported).
        cancel(services, job_id)

    backend.before_reply = canceled_meanwhile

    outcome = execute_feature(services, job_id, "stylize", "task-1", restyle)

    assert outcome["outcome"] == "noop"
    found = runs(services, job_id)
    assert found["stylize"].status == "canceled" and found["stylize"].result is None
    assert found["stylize"].input_tokens is None
    assert found["card"].status == "canceled"
    assert images(services, job_id) == ["photo"]
    assert isinstance(services.store, DiskStore)  # the task layer's store
    files = [path for path in services.store.root.rglob("*") if path.is_file()]
    assert len(files) == 1  # the photo alone: the portrait was never written


def test_a_run_stops_at_its_next_report_once_canceled(
    services: WorkerServices, make_job: MakeJob, backend: StubBackend
) -> None:
    job_id = video_job(make_job)
    steps: list[str] = []

    def work(ctx: FeatureContext) -> ModelReply:
        ctx.report(0.2, "reading")
        steps.append("reading")
        cancel(services, job_id)
        ctx.report(0.4, "asking the model")
        steps.append("asked")  # never reached
        return summarize(ctx)

    outcome = execute_feature(services, job_id, "summary", "task-1", work)

    assert outcome == {
        "job_id": job_id,
        "feature": "summary",
        "outcome": "noop",
        "reason": "canceled",
    }
    assert steps == ["reading"] and backend.calls == []
    run = runs(services, job_id)["summary"]
    assert (run.status, run.error_code, run.result) == ("canceled", "canceled", None)


def test_a_long_backoff_ends_once_the_heartbeat_sees_the_cancel(
    services: WorkerServices, make_job: MakeJob, backend: StubBackend
) -> None:
    job_id = video_job(make_job)
    policy = RetryPolicy(max_attempts=100, backoff_base_s=30.0, backoff_max_s=30.0)

    def always_unavailable() -> None:
        raise RetryableModelError("model_unavailable", "503 from the model")

    backend.before_reply = lambda _f: call_with_retries(
        always_unavailable, policy, rand=lambda: 1.0
    )
    threading.Timer(0.3, lambda: cancel(services, job_id)).start()
    started = time.monotonic()

    outcome = execute_feature(services, job_id, "summary", "task-1", summarize)

    # Without the check the run would wait out a 30 s backoff, then the next, ...
    assert time.monotonic() - started < 5.0
    assert outcome["outcome"] == "noop" and outcome["reason"] == "canceled"
    assert runs(services, job_id)["summary"].status == "canceled"


def test_messages_and_chord_callbacks_of_a_canceled_job_do_nothing(
    services: WorkerServices, make_job: MakeJob, backend: StubBackend
) -> None:
    job_id = photo_job(make_job, services)
    cancel(services, job_id)
    version = services.bus.snapshot(job_id)

    for feature, work in (("caption", describe), ("stylize", restyle), ("card", compose)):
        outcome = execute_feature(services, job_id, feature, f"task-{feature}", work)
        assert outcome["outcome"] == "noop" and outcome["reason"] == "already canceled"
    assert backend.calls == []
    assert services.bus.snapshot(job_id) == version


def test_the_reconciler_never_resends_a_canceled_feature(
    services: WorkerServices, make_job: MakeJob
) -> None:
    job = make_job(JobKind.VIDEO, ["summary", "comments"], {})
    job_id = str(job.id)
    cancel(services, job_id)
    assert retry(services, job_id, "summary") == ["summary"]
    long_ago = utcnow() - timedelta(hours=1)
    with services.session() as session:
        session.execute(update(Job).where(Job.id == job.id).values(enqueued_at=long_ago))
        # A canceled feature whose run died long ago looks like nothing to recover.
        session.execute(
            update(FeatureRun)
            .where(FeatureRun.job_id == job.id, FeatureRun.feature == "comments")
            .values(heartbeat_at=long_ago, started_at=long_ago)
        )
    sent: list[tuple[str, list[str]]] = []
    timing = Timing(requeue_after=timedelta(seconds=1), heartbeat_timeout=timedelta(seconds=1))

    reconcile_once(services, lambda j, f: sent.append((str(j), f)), timing=timing)

    assert sent == [(job_id, ["summary"])]


def test_a_retried_stylize_runs_again_and_sends_a_new_card(
    services: WorkerServices, make_job: MakeJob, backend: StubBackend
) -> None:
    job_id = photo_job(make_job, services)
    execute_feature(services, job_id, "caption", "t-caption", describe)
    backend.before_reply = lambda feature: _fail_once(feature, backend)
    execute_feature(services, job_id, "stylize", "t-stylize", restyle)
    backend.before_reply = None
    execute_feature(services, job_id, "card", "t-card", compose)
    before = runs(services, job_id)
    assert (before["stylize"].status, before["card"].status) == ("failed", "skipped")

    assert retry(services, job_id, "stylize") == ["stylize"]
    sent: list[list[str]] = []
    outcome = execute_feature(
        services, job_id, "stylize", "t-stylize-2", restyle, send=lambda _j, f: sent.append(f)
    )

    assert outcome["outcome"] == "succeeded" and sent == [["card"]]
    assert runs(services, job_id)["stylize"].attempts == 1
    assert execute_feature(services, job_id, "card", "t-card-2", compose)["outcome"] == (
        "succeeded"
    )
    with services.session() as session:
        job = session.get(Job, uuid.UUID(job_id))
        assert job is not None and job.status == "succeeded" and job.finished_at is not None
    assert sorted(images(services, job_id)) == ["card", "photo", "stylize"]


def _fail_once(feature: str, backend: StubBackend) -> Any:
    if feature == "stylize":
        raise FeatureError("model_unavailable", "the model was down")
    return None
