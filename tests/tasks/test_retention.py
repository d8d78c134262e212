"""Retention and erasure at the task layer: old jobs lose their images and inline inputs
and keep the rest; a job deleted while a worker runs one of its features stays deleted."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
import structlog
from sqlalchemy import func, select, update

from refract.core.errors import FeatureError
from refract.core.material import ImageBlob
from refract.core.models import Artifact, FeatureRun, Job, utcnow
from refract.core.settings import Settings
from refract.imaging.storage import store_image
from refract.jobs.catalog import MAINTENANCE_QUEUE, PURGE_TASK, JobKind
from refract.jobs.erasure import erase_job
from refract.jobs.progress import Event, ProgressBus
from refract.jobs.resource import job_resource
from tasks.inputs import keep_image
from tasks.retention import purge_expired, purge_once
from tasks.runner import FeatureContext, execute_feature
from tasks.services import WorkerServices
from tasks.stylize import restyle
from tests.support.stub_backend import StubBackend
from worker.app import create_worker_app

MakeJob = Callable[..., Job]
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def photo_job(make_job: MakeJob, services: WorkerServices, prompt: str) -> uuid.UUID:
    """A photo card job with its photo stored as the API stores it."""
    job = make_job(JobKind.PHOTOCARD, ["stylize"], {"prompt": prompt})
    with services.session() as session:
        photo = store_image(
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
            .values(input={"prompt": prompt, "photo_artifact_id": str(photo.id)})
        )
    return job.id


def age(services: WorkerServices, job_id: uuid.UUID, days: float) -> None:
    with services.session() as session:
        session.execute(
            update(Job).where(Job.id == job_id).values(created_at=utcnow() - timedelta(days=days))
        )


def files(services: WorkerServices) -> set[str]:
    root = Path(services.settings.media_dir)
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_old_finished_jobs_lose_images_and_inputs_and_keep_the_rest(
    services: WorkerServices, make_job: MakeJob, backend: StubBackend
) -> None:
    old = photo_job(make_job, services, "my name is Kim, booth 7")
    fresh = photo_job(make_job, services, "stars")
    for job_id in (old, fresh):
        assert execute_feature(services, str(job_id), "stylize", "t", restyle)["outcome"] == (
            "succeeded"
        )
    unfinished = photo_job(make_job, services, "still running")
    age(services, old, days=2)
    age(services, unfinished, days=2)
    before = files(services)

    purged = purge_once(services)

    assert purged == [str(old)]
    with services.session() as session:
        job = session.get(Job, old)
        assert job is not None and job.purged_at is not None
        assert job.status == "succeeded" and job.features[0].status == "succeeded"
        assert job.features[0].input_tokens is not None  # usage kept
        assert "prompt" not in job.input
        arts = session.scalars(select(Artifact).where(Artifact.job_id == old)).all()
        assert {a.role for a in arts} == {"photo", "stylize"}
        assert all(a.purged_at is not None for a in arts)
        erased = {a.storage_key for a in arts}
        kept = session.scalars(select(Artifact).where(Artifact.job_id == fresh)).all()
        assert all(a.purged_at is None for a in kept)
    assert files(services) == before - erased
    assert erased and erased <= before
    # The published state no longer carries the visitor's prompt.
    snapshot = services.bus.snapshot(str(old))
    assert snapshot is not None and snapshot[1]["input"]["prompt"] == ""
    # A second round has nothing left to do.
    assert purge_once(services) == []


def test_an_image_stored_after_the_purge_is_purged_by_the_next_round(
    services: WorkerServices, make_job: MakeJob
) -> None:
    job_id = photo_job(make_job, services, "stars")
    with services.session() as session:
        session.execute(update(Job).where(Job.id == job_id).values(finished_at=utcnow()))
    age(services, job_id, days=2)
    assert purge_once(services) == [str(job_id)]
    with services.session() as session:
        first_purge = session.get(Job, job_id).purged_at  # type: ignore[union-attr]
        # A run that lost its claim long ago writes its image only now.
        late = store_image(
            session,
            services.store,
            job_id=job_id,
            role="thumbnail",
            data=(FIXTURES / "coffee.png").read_bytes(),
            content_type="image/png",
        ).storage_key
    assert late in files(services)

    assert purge_once(services) == [str(job_id)]

    assert late not in files(services)
    with services.session() as session:
        job = session.get(Job, job_id)
        assert job is not None and job.purged_at == first_purge
        left = session.scalar(
            select(func.count())
            .select_from(Artifact)
            .where(Artifact.job_id == job_id, Artifact.purged_at.is_(None))
        )
        assert left == 0
    assert purge_once(services) == []


def test_a_round_is_bounded_and_the_rest_waits_for_the_next(
    services: WorkerServices, make_job: MakeJob
) -> None:
    jobs = [photo_job(make_job, services, f"visitor {i}") for i in range(3)]
    with services.session() as session:
        session.execute(update(Job).where(Job.id.in_(jobs)).values(finished_at=utcnow()))
    for days, job_id in zip((4, 3, 2), jobs, strict=True):
        age(services, job_id, days=days)

    assert purge_once(services, limit=2) == [str(jobs[0]), str(jobs[1])]  # oldest first
    assert purge_once(services, limit=2) == [str(jobs[2])]
    assert files(services) == set()


def test_beat_runs_the_purge_on_the_maintenance_queue(worker_settings: Settings) -> None:
    settings = worker_settings.model_copy(update={"retention_interval_s": 123})
    app = create_worker_app(settings)

    entry = app.conf.beat_schedule["purge-expired"]
    assert entry["task"] == PURGE_TASK == purge_expired.name == "refract.maintenance.purge_expired"
    assert entry["schedule"] == 123
    assert app.amqp.router.route({}, PURGE_TASK)["queue"].name == MAINTENANCE_QUEUE


def erase(services: WorkerServices, job_id: uuid.UUID) -> None:
    """What ``DELETE /api/v1/jobs/<id>`` does."""
    with services.session() as session:
        remove_files = erase_job(session, services.store.delete, job_id)
    remove_files()
    services.bus.forget(str(job_id))


def redis_keys(services: WorkerServices, job_id: uuid.UUID) -> list[str]:
    """The job's snapshot and event stream, if Redis holds them."""
    keys = [ProgressBus.snapshot_key(str(job_id)), ProgressBus.stream_key(str(job_id))]
    return [key for key in keys if services.redis.exists(key)]


def test_a_result_arriving_after_the_job_was_deleted_leaves_nothing(
    services: WorkerServices, make_job: MakeJob, backend: StubBackend
) -> None:
    job_id = photo_job(make_job, services, "stars")
    # The visitor deletes the job while the model is restyling the face.
    backend.before_reply = lambda _feature: erase(services, job_id)

    outcome = execute_feature(services, str(job_id), "stylize", "t", restyle)

    assert outcome["outcome"] == "noop" and backend.calls == ["stylize"]
    assert files(services) == set()  # neither the photo nor the late portrait
    with services.session() as session:
        assert session.scalar(select(func.count()).select_from(Artifact)) == 0
        assert session.scalar(select(func.count()).select_from(FeatureRun)) == 0
    assert redis_keys(services, job_id) == []


def test_an_image_fetched_for_a_deleted_job_is_not_kept(
    services: WorkerServices, make_job: MakeJob
) -> None:
    job = make_job(JobKind.VIDEO, ["thumbnail"], {"video_id": "9bZkp7q19f0"})
    erase(services, job.id)
    ctx = FeatureContext(
        job_id=job.id,
        feature="thumbnail",
        task_id="t",
        kind=job.kind,
        language="en",
        input={"video_id": "9bZkp7q19f0"},
        services=services,
        log=structlog.get_logger(),
    )
    image = ImageBlob((FIXTURES / "coffee.png").read_bytes(), "image/png")

    with pytest.raises(FeatureError) as raised:
        keep_image(ctx, image, role="thumbnail", width=1, height=1)

    assert raised.value.code == "job_deleted"
    assert files(services) == set()


def test_a_change_published_just_after_the_erasure_does_not_bring_the_job_back(
    services: WorkerServices, make_job: MakeJob
) -> None:
    job = make_job(JobKind.VIDEO, ["summary"], {"video_id": "9bZkp7q19f0"})
    snapshot = job_resource(job)  # as a worker that committed just before the DELETE has it
    event = Event("feature", {"job_id": str(job.id), "status": "running"})
    assert services.bus.publish(str(job.id), job.version, snapshot, [event])
    assert len(redis_keys(services, job.id)) == 2

    erase(services, job.id)
    services.bus.publish(str(job.id), job.version + 1, snapshot, [event])

    assert redis_keys(services, job.id) == []
    assert services.bus.snapshot(str(job.id)) is None
