"""The feature runner: claim under the job's lock, work, store the outcome once.

Each test runs ``execute_feature`` in-process with the real work functions of the
feature tasks, a stub model backend, Postgres and Redis.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from refract.core.errors import FeatureError, RetryableModelError
from refract.core.material import ImageBlob
from refract.core.models import Artifact, FeatureRun, Job, utcnow
from refract.core.settings import Settings
from refract.gateway.retry import RetryPolicy, call_with_retries
from refract.imaging.storage import store_image
from refract.jobs.catalog import JobKind
from refract.jobs.resource import etag_for
from tasks.caption import describe
from tasks.card import compose
from tasks.runner import FeatureContext, execute_feature
from tasks.services import WorkerServices
from tasks.stylize import restyle
from tasks.summary import summarize
from tests.support.database_faults import DatabaseFaults
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


def lost_heartbeat(services: WorkerServices) -> Any:
    """A heartbeat older than the timeout: the worker that held the claim is gone."""
    return utcnow() - timedelta(seconds=services.settings.heartbeat_timeout_s + 1)


def test_a_redelivery_of_a_live_runs_own_message_does_nothing(
    services: WorkerServices, make_job: MakeJob, backend: StubBackend
) -> None:
    # Redis hands the same message out again (a reconnect, the visibility timeout) while
    # the first delivery still works and beats: a second run would bill the model twice.
    job_id = video_job(make_job)
    set_run(
        services,
        job_id,
        "summary",
        status="running",
        task_id="task-1",
        attempts=1,
        started_at=utcnow(),
        heartbeat_at=utcnow(),
    )

    outcome = execute_feature(services, job_id, "summary", "task-1", summarize)

    assert outcome["outcome"] == "noop" and outcome["reason"] == "running in another task"
    assert backend.calls == []


def test_a_redelivered_message_takes_over_once_the_heartbeat_stopped(
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
        started_at=lost_heartbeat(services),
        heartbeat_at=lost_heartbeat(services),
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
        heartbeat_at=utcnow(),
    )

    outcome = execute_feature(services, job_id, "summary", "task-2", summarize)

    assert outcome["outcome"] == "noop" and outcome["reason"] == "running in another task"
    assert backend.calls == []
    assert runs(services, job_id)["summary"].task_id == "task-1"


def test_a_lost_claim_is_taken_over_by_another_copy(
    services: WorkerServices, make_job: MakeJob, backend: StubBackend
) -> None:
    # It started only a moment ago, but its heartbeat stopped: liveness, not age.
    job_id = video_job(make_job)
    set_run(
        services,
        job_id,
        "summary",
        status="running",
        task_id="task-1",
        attempts=1,
        started_at=utcnow(),
        heartbeat_at=lost_heartbeat(services),
    )

    outcome = execute_feature(services, job_id, "summary", "task-2", summarize)

    assert outcome["outcome"] == "succeeded"
    run = runs(services, job_id)["summary"]
    assert (run.task_id, run.attempts) == ("task-2", 2)


def test_a_slow_run_that_beats_is_never_taken_over(
    services: WorkerServices, make_job: MakeJob, backend: StubBackend
) -> None:
    job_id = video_job(make_job)
    timeout = services.settings.heartbeat_timeout_s
    copies: list[dict[str, Any]] = []

    def slow_model(_feature: str) -> None:
        # Longer than the heartbeat timeout; another copy arrives after the timeout.
        time.sleep(timeout * 1.3)
        copies.append(execute_feature(services, job_id, "summary", "task-2", summarize))
        time.sleep(timeout * 0.5)

    backend.before_reply = slow_model
    outcome = execute_feature(services, job_id, "summary", "task-1", summarize)

    assert outcome["outcome"] == "succeeded"
    assert copies[0]["outcome"] == "noop" and copies[0]["reason"] == "running in another task"
    run = runs(services, job_id)["summary"]
    assert (run.attempts, run.task_id) == (1, "task-1")
    assert run.heartbeat_at is not None and run.started_at is not None
    assert run.heartbeat_at - run.started_at >= timedelta(seconds=timeout)


def test_a_feature_whose_worker_was_lost_too_often_fails_and_the_job_moves_on(
    services: WorkerServices, make_job: MakeJob, backend: StubBackend
) -> None:
    job_id = photo_job(make_job, services)
    cap = services.settings.max_attempts
    set_run(
        services,
        job_id,
        "caption",
        status="running",
        task_id="t-9",
        attempts=cap,
        started_at=lost_heartbeat(services),
        heartbeat_at=lost_heartbeat(services),
    )
    assert execute_feature(services, job_id, "stylize", "t-2", restyle)["outcome"] == "succeeded"
    sent: list[tuple[uuid.UUID, list[str]]] = []

    outcome = execute_feature(
        services, job_id, "caption", "t-10", describe, send=lambda j, f: sent.append((j, f))
    )

    assert outcome["outcome"] == "failed"
    caption = runs(services, job_id)["caption"]
    assert (caption.status, caption.error_code, caption.attempts) == (
        "failed",
        "attempts_exhausted",
        cap,
    )
    assert "caption" not in backend.calls
    # Not part of a chord (it was resent): it sends the card waiting on it itself.
    assert sent == [(uuid.UUID(job_id), ["card"])]
    assert execute_feature(services, job_id, "card", "c-1", compose)["outcome"] == "skipped"


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


def test_retries_and_waits_end_at_the_features_deadline(
    services: WorkerServices,
    make_job: MakeJob,
    backend: StubBackend,
    worker_settings: Settings,
) -> None:
    # The model keeps failing transiently and asks for backoff: without a deadline the
    # retry loop would go on for minutes. The feature's own budget stops it.
    services.settings = worker_settings.model_copy(
        update={"feature_deadlines_s": {**worker_settings.feature_deadlines_s, "summary": 0.4}}
    )
    policy = RetryPolicy(max_attempts=50, backoff_base_s=0.05, backoff_max_s=0.1)

    def always_unavailable() -> None:
        raise RetryableModelError("model_unavailable", "503 from the model")

    backend.before_reply = lambda _f: call_with_retries(always_unavailable, policy)
    started = time.monotonic()

    outcome = execute_feature(services, video_job(make_job), "summary", "task-1", summarize)

    assert outcome["outcome"] == "failed"
    assert time.monotonic() - started < 2.0
    run = runs(services, outcome["job_id"])["summary"]
    assert run.error_code == "deadline_exceeded"


def test_a_result_is_kept_through_database_errors_and_its_image_stored_once(
    services: WorkerServices,
    make_job: MakeJob,
    backend: StubBackend,
    database_faults: DatabaseFaults,
) -> None:
    job_id = photo_job(make_job, services)
    # The model has answered; the next two commits (storing it) hit a dropped connection.
    backend.before_reply = lambda _f: database_faults.fail_next(2)

    outcome = execute_feature(services, job_id, "stylize", "t-2", restyle)

    assert outcome["outcome"] == "succeeded"
    assert database_faults.failed == 2
    assert backend.calls == ["stylize"]  # the paid answer was not asked for again
    with services.session() as session:
        roles = sorted(session.scalars(select(Artifact.role)).all())
    assert roles == ["photo", "stylize"]
    # Files of the attempts whose transaction failed were removed.
    assert len([p for p in Path(services.settings.media_dir).rglob("*") if p.is_file()]) == 2


def test_a_failed_commit_publishes_nothing(
    services: WorkerServices,
    make_job: MakeJob,
    backend: StubBackend,
    database_faults: DatabaseFaults,
    worker_settings: Settings,
) -> None:
    # The database stays unreachable past the retry budget: nothing of the outcome may
    # reach Redis, or a client would read a state that never happened.
    services.settings = worker_settings.model_copy(update={"store_retry_s": 0.0})
    job_id = video_job(make_job)
    backend.before_reply = lambda _f: database_faults.fail_next(100)

    outcome = execute_feature(services, job_id, "summary", "task-1", summarize)

    assert outcome["outcome"] == "noop" and outcome["reason"] == "outcome not stored"
    database_faults.fail_next(0)  # the database is back
    job = job_row(services, job_id)
    snapshot = services.bus.snapshot(job_id)
    assert snapshot is not None
    assert snapshot[0] == job.version
    assert snapshot[1]["features"]["summary"]["status"] == "running" == job.features[0].status
    finished = [e for e in services.bus.read(job_id) if e.data.get("step") == "finished"]
    assert finished == []


def test_progress_that_cannot_be_saved_does_not_fail_the_feature(
    services: WorkerServices,
    make_job: MakeJob,
    backend: StubBackend,
    database_faults: DatabaseFaults,
) -> None:
    job_id = video_job(make_job)

    def work(ctx: FeatureContext) -> Any:
        database_faults.fail_next(1)
        ctx.report(0.5, "halfway")  # its commit fails
        return summarize(ctx)

    outcome = execute_feature(services, job_id, "summary", "task-1", work)

    assert outcome["outcome"] == "succeeded"
    assert database_faults.failed == 1


def test_an_unexpected_failure_shows_a_reference_not_the_exception(
    services: WorkerServices, make_job: MakeJob, backend: StubBackend
) -> None:
    job_id = video_job(make_job)

    def crash(_feature: str) -> None:
        raise RuntimeError("connect to db-primary.internal:5432 failed: password for admin")

    backend.before_reply = crash
    execute_feature(services, job_id, "summary", "task-1", summarize)

    run = runs(services, job_id)["summary"]
    assert run.error_code == "internal_error" and run.error_ref
    snapshot = services.bus.snapshot(job_id)
    assert snapshot is not None
    error = snapshot[1]["features"]["summary"]["error"]
    assert error["reference"] == run.error_ref
    assert "db-primary" not in str(snapshot[1]) and "RuntimeError" not in str(snapshot[1])


def _unreachable() -> OperationalError:
    return OperationalError(
        "SELECT", None, ConnectionError("connection refused: is the server running?")
    )


def test_inputs_are_read_again_when_the_database_drops_out(
    services: WorkerServices, make_job: MakeJob, backend: StubBackend
) -> None:
    job_id = photo_job(make_job, services)
    failures = [_unreachable(), _unreachable()]

    def work(ctx: FeatureContext) -> Any:
        if failures:  # reading the photo hits a Postgres restart, twice
            raise failures.pop()
        return describe(ctx)

    outcome = execute_feature(services, job_id, "caption", "task-1", work)

    assert outcome["outcome"] == "succeeded"
    assert failures == [] and backend.calls == ["caption"]


def test_inputs_out_of_reach_leave_the_feature_to_be_run_again(
    services: WorkerServices,
    make_job: MakeJob,
    backend: StubBackend,
    worker_settings: Settings,
) -> None:
    # The database's fault is never the feature's: no internal_error, no final state;
    # the run lets go (its heartbeat stops) and the reconciler sends it again.
    services.settings = worker_settings.model_copy(update={"store_retry_s": 0.0})
    job_id = photo_job(make_job, services)

    def work(_ctx: FeatureContext) -> Any:
        raise _unreachable()

    outcome = execute_feature(services, job_id, "caption", "task-1", work)

    assert outcome["outcome"] == "noop" and outcome["reason"] == "outcome not stored"
    run = runs(services, job_id)["caption"]
    assert run.status == "running" and run.error_code is None
    assert backend.calls == []
    assert services.heartbeats.beat_once() == 0  # nothing beats for it any more


def test_redis_out_of_reach_mid_work_is_never_an_internal_error(
    services: WorkerServices, make_job: MakeJob, backend: StubBackend
) -> None:
    job_id = video_job(make_job)

    def work(_ctx: FeatureContext) -> Any:
        raise redis.ConnectionError("Error 111 connecting to 10.0.0.5:6379")

    outcome = execute_feature(services, job_id, "summary", "task-1", work)

    assert outcome["outcome"] == "noop"
    run = runs(services, job_id)["summary"]
    assert run.status == "running" and run.error_code is None  # left to be run again
