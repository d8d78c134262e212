"""The feature runner: claim under the job's lock, work, store the outcome once.

Each test runs ``execute_feature`` in-process with the real work functions of the
feature tasks, a stub model backend, Postgres and Redis.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from refract.core.errors import FeatureError
from refract.core.material import ImageBlob
from refract.core.models import Artifact, FeatureRun, Job, utcnow
from refract.imaging.storage import store_image
from refract.jobs.catalog import JobKind
from refract.jobs.resource import etag_for
from tasks.caption import describe
from tasks.card import compose
from tasks.runner import FeatureContext, execute_feature
from tasks.services import WorkerServices
from tasks.stylize import restyle
from tasks.summary import summarize
from tests.support.stub_backend import StubBackend

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SOURCE = {
    "title": "Brewing coffee",
    "description": "How to brew.",
    "transcript": [{"start": 0.0, "text": "Grind the beans."}],
    "comments": [],
}

MakeJob = Callable[..., Job]


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
            data=(FIXTURES / "astronaut.png").read_bytes(),
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


def job_row(services: WorkerServices, job_id: str) -> Job:
    with services.session() as session:
        job = session.get(Job, uuid.UUID(job_id))
        assert job is not None
        return job


def set_run(services: WorkerServices, job_id: str, feature: str, **values: Any) -> None:
    with services.session() as session:
        session.execute(
            update(FeatureRun)
            .where(FeatureRun.job_id == uuid.UUID(job_id), FeatureRun.feature == feature)
            .values(**values)
        )


def test_a_queued_feature_runs_once_and_its_outcome_is_stored_and_published(
    services: WorkerServices, make_job: MakeJob, backend: StubBackend
) -> None:
    job_id = video_job(make_job)

    outcome = execute_feature(services, job_id, "summary", "task-1", summarize)

    assert outcome == {"job_id": job_id, "feature": "summary", "outcome": "succeeded"}
    assert backend.calls == ["summary"]
    run = runs(services, job_id)["summary"]
    assert (run.status, run.attempts, run.task_id) == ("succeeded", 1, "task-1")
    assert run.result is not None and run.result["tldr"] == "About Brewing coffee."
    assert (run.backend, run.model, run.input_tokens, run.output_tokens) == (
        "stub",
        "stub-model-1",
        10,
        5,
    )
    job = job_row(services, job_id)
    assert job.status == "succeeded" and job.finished_at is not None
    # The Redis snapshot is the committed state, at the committed version.
    snapshot = services.bus.snapshot(job_id)
    assert snapshot is not None
    version, body = snapshot
    assert version == job.version and etag_for(job_id, version) == etag_for(body["id"], version)
    assert body["status"] == "succeeded"
    steps = [e.data.get("step") for e in services.bus.read(job_id) if e.type == "feature"]
    assert steps[0] == "started" and steps[-1] == "finished"


def test_a_redelivered_message_for_a_finished_feature_does_nothing(
    services: WorkerServices, make_job: MakeJob, backend: StubBackend
) -> None:
    job_id = video_job(make_job)
    execute_feature(services, job_id, "summary", "task-1", summarize)
    before = job_row(services, job_id).version

    again = execute_feature(services, job_id, "summary", "task-1", summarize)

    assert again["outcome"] == "noop" and again["reason"] == "already succeeded"
    assert backend.calls == ["summary"]
    assert runs(services, job_id)["summary"].attempts == 1
    assert job_row(services, job_id).version == before  # the claim's change was rolled back


def test_the_same_message_redelivered_while_running_takes_over(
    services: WorkerServices, make_job: MakeJob, backend: StubBackend
) -> None:
    # The worker died mid-call; Redis redelivers the very same message (same task id).
    job_id = video_job(make_job)
    set_run(
        services,
        job_id,
        "summary",
        status="running",
        task_id="task-1",
        attempts=1,
        started_at=utcnow(),
    )

    outcome = execute_feature(services, job_id, "summary", "task-1", summarize)

    assert outcome["outcome"] == "succeeded"
    assert runs(services, job_id)["summary"].attempts == 2


def test_a_second_copy_leaves_a_live_claim_alone(
    services: WorkerServices, make_job: MakeJob, backend: StubBackend
) -> None:
    job_id = video_job(make_job)
    set_run(
        services,
        job_id,
        "summary",
        status="running",
        task_id="task-1",
        attempts=1,
        started_at=utcnow(),
    )

    outcome = execute_feature(services, job_id, "summary", "task-2", summarize)

    assert outcome["outcome"] == "noop" and outcome["reason"] == "running in another task"
    assert backend.calls == []
    assert runs(services, job_id)["summary"].task_id == "task-1"


def test_a_stale_claim_is_taken_over_by_another_copy(
    services: WorkerServices, make_job: MakeJob, backend: StubBackend
) -> None:
    job_id = video_job(make_job)
    lost = utcnow() - timedelta(seconds=services.settings.claim_stale_after_s + 1)
    set_run(
        services, job_id, "summary", status="running", task_id="task-1", attempts=1, started_at=lost
    )

    outcome = execute_feature(services, job_id, "summary", "task-2", summarize)

    assert outcome["outcome"] == "succeeded"
    run = runs(services, job_id)["summary"]
    assert (run.task_id, run.attempts) == ("task-2", 2)


def test_two_copies_racing_for_one_feature_call_the_model_once(
    services: WorkerServices, make_job: MakeJob, backend: StubBackend
) -> None:
    job_id = video_job(make_job)
    start = threading.Barrier(2)
    outcomes: list[dict[str, Any]] = []

    def copy(task_id: str) -> None:
        start.wait()
        outcomes.append(execute_feature(services, job_id, "summary", task_id, summarize))

    threads = [threading.Thread(target=copy, args=(f"task-{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(o["outcome"] for o in outcomes) == ["noop", "succeeded"]
    assert backend.calls == ["summary"]
    assert runs(services, job_id)["summary"].attempts == 1


def test_a_run_that_lost_its_claim_mid_work_drops_its_outcome(
    services: WorkerServices, make_job: MakeJob, backend: StubBackend
) -> None:
    job_id = video_job(make_job)

    def taken_over(_feature: str) -> None:
        # While the model answers, another copy claims the feature (e.g. after a stale claim).
        set_run(services, job_id, "summary", task_id="task-2")

    backend.before_reply = taken_over
    outcome = execute_feature(services, job_id, "summary", "task-1", summarize)

    assert outcome["outcome"] == "noop"
    assert outcome["reason"] == "outcome already recorded by another run"
    run = runs(services, job_id)["summary"]
    assert (run.status, run.task_id, run.result) == ("running", "task-2", None)


@pytest.mark.parametrize(
    ("raised", "status", "code"),
    [
        (FeatureError("safety_block", "refused", status="blocked"), "blocked", "safety_block"),
        (FeatureError("model_timeout", "too slow"), "failed", "model_timeout"),
        (KeyError("a bug"), "failed", "internal_error"),
    ],
)
def test_a_failure_is_recorded_never_raised(
    services: WorkerServices,
    make_job: MakeJob,
    backend: StubBackend,
    raised: Exception,
    status: str,
    code: str,
) -> None:
    job_id = video_job(make_job)

    def fail(_feature: str) -> None:
        raise raised

    backend.before_reply = fail
    outcome = execute_feature(services, job_id, "summary", "task-1", summarize)

    assert outcome["outcome"] == status
    run = runs(services, job_id)["summary"]
    assert (run.status, run.error_code, run.result) == (status, code, None)
    assert job_row(services, job_id).status == "failed"


def test_card_waits_for_its_inputs_then_runs_with_them(
    services: WorkerServices, make_job: MakeJob, backend: StubBackend
) -> None:
    job_id = photo_job(make_job, services)

    early = execute_feature(services, job_id, "card", "card-1", compose)
    assert early["outcome"] == "noop" and early["reason"] == "inputs not final yet"

    assert execute_feature(services, job_id, "caption", "t-1", describe)["outcome"] == "succeeded"
    assert execute_feature(services, job_id, "stylize", "t-2", restyle)["outcome"] == "succeeded"
    assert execute_feature(services, job_id, "card", "card-1", compose)["outcome"] == "succeeded"

    assert backend.calls == ["caption", "stylize", "card"]
    found = runs(services, job_id)
    card = found["card"].result
    assert card is not None and card["note"] == "A visitor at the booth. / stars"
    # Images are stored as artifacts and named by id; no URL is persisted.
    for feature in ("stylize", "card"):
        result = found[feature].result
        assert result is not None and "image_url" not in result
        with services.session() as session:
            artifact = session.get(Artifact, uuid.UUID(result["artifact_id"]))
            assert artifact is not None and artifact.role == feature
    snapshot = services.bus.snapshot(job_id)
    assert snapshot is not None
    shown = snapshot[1]["features"]["card"]["result"]
    assert shown["image_url"] == f"/api/v1/artifacts/{card['artifact_id']}"


def test_card_is_skipped_when_an_input_failed(
    services: WorkerServices, make_job: MakeJob, backend: StubBackend
) -> None:
    job_id = photo_job(make_job, services)
    set_run(
        services,
        job_id,
        "caption",
        status="failed",
        error_code="model_timeout",
        progress=1.0,
        finished_at=utcnow(),
    )
    assert execute_feature(services, job_id, "stylize", "t-2", restyle)["outcome"] == "succeeded"

    outcome = execute_feature(services, job_id, "card", "card-1", compose)

    assert outcome["outcome"] == "skipped"
    card = runs(services, job_id)["card"]
    assert card.error_code == "input_unavailable" and "caption failed" in (card.error_message or "")
    assert "card" not in backend.calls
    assert job_row(services, job_id).status == "partial"


def test_an_unusable_model_image_fails_the_feature(
    services: WorkerServices, make_job: MakeJob, backend: StubBackend
) -> None:
    job_id = photo_job(make_job, services)

    def broken_image(ctx: FeatureContext) -> Any:
        reply = restyle(ctx)
        reply.image = ImageBlob(b"not an image", "image/png")
        return reply

    outcome = execute_feature(services, job_id, "stylize", "t-2", broken_image)

    assert outcome["outcome"] == "failed"
    run = runs(services, job_id)["stylize"]
    assert run.error_code == "invalid_model_output"
    with services.session() as session:
        roles = session.scalars(select(Artifact.role)).all()
    assert roles == ["photo"]  # nothing of the failed image was kept


def test_a_message_for_a_job_that_no_longer_exists_is_dropped(
    services: WorkerServices, backend: StubBackend
) -> None:
    outcome = execute_feature(services, str(uuid.uuid4()), "summary", "task-1", summarize)

    assert outcome["outcome"] == "noop" and outcome["reason"] == "no such job"
    assert backend.calls == []


def test_progress_is_published_only_while_the_run_owns_the_feature(
    services: WorkerServices, make_job: MakeJob, backend: StubBackend
) -> None:
    job_id = video_job(make_job)
    seen: list[float] = []

    def work(ctx: FeatureContext) -> Any:
        ctx.report(0.5, "halfway")
        seen.append(runs(services, job_id)["summary"].progress)
        set_run(services, job_id, "summary", task_id="task-2")  # the claim is lost
        version = job_row(services, job_id).version
        ctx.report(0.9, "too late")
        assert job_row(services, job_id).version == version
        seen.append(runs(services, job_id)["summary"].progress)
        return summarize(ctx)

    execute_feature(services, job_id, "summary", "task-1", work)

    assert seen == [0.5, 0.5]
