"""Retention: old jobs lose their images and inline inputs, and keep the rest."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update

from refract.core.models import Artifact, Job, utcnow
from refract.imaging.storage import store_image
from refract.jobs.catalog import JobKind
from tasks.retention import purge_once
from tasks.runner import execute_feature
from tasks.services import WorkerServices
from tasks.stylize import restyle
from tests.support.stub_backend import StubBackend

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
