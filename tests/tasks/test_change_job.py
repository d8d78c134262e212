"""State changes under the job's row lock (:func:`refract.jobs.state.change_job`), which
reads and writes the rows with SQLAlchemy Core: what a mutation changes is written, what
it leaves alone is not, and nothing is written or published when it gives up."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from sqlalchemy import update

from refract.core.errors import NotFound
from refract.core.models import FeatureRun, Job
from refract.jobs.catalog import JobKind
from refract.jobs.progress import Event
from refract.jobs.state import change_job, feature_event
from tasks.claims import Skip
from tasks.services import WorkerServices
from tests.support.jobs import load_job

MakeJob = Callable[..., Job]


def stored(services: WorkerServices, job_id: uuid.UUID) -> tuple[Job, dict[str, FeatureRun]]:
    """The job as committed, and its runs by feature."""
    job = load_job(str(job_id), services.sessions)
    return job, {run.feature: run for run in job.features}


def test_the_mutation_is_written_aggregated_and_published(
    services: WorkerServices, make_job: MakeJob
) -> None:
    job_id = make_job(JobKind.VIDEO, ["summary", "comments"], {"source": {"title": "t"}}).id
    before, _ = stored(services, job_id)

    def start_summary(job: Job, runs: dict[str, FeatureRun]) -> list[Event]:
        runs["summary"].status = "running"
        runs["summary"].progress = 0.5
        runs["summary"].task_id = "task-1"
        return [feature_event(str(job.id), runs["summary"], step="started")]

    with services.session() as session:
        returned = change_job(session, services.bus, job_id, start_summary)

    job, runs = stored(services, job_id)
    assert job.version == before.version + 1 == returned.version
    assert (job.status, job.progress) == ("running", 0.25)
    assert (runs["summary"].status, runs["summary"].task_id) == ("running", "task-1")
    assert runs["comments"].status == "queued"
    assert [run.feature for run in returned.features] == ["summary", "comments"]
    snapshot = services.bus.snapshot(str(job_id))
    assert snapshot is not None
    version, resource = snapshot
    assert version == job.version and resource["features"]["summary"]["status"] == "running"
    types = [event.type for event in services.bus.read(str(job_id))]
    assert types[-2:] == ["feature", "job"]  # the job went from queued to running


def test_columns_the_mutation_left_alone_are_not_written(
    services: WorkerServices, make_job: MakeJob
) -> None:
    """Only what changed is sent: a column a statement of the mutation itself set (as
    erasure's do) is not overwritten with the value read before it."""
    job_id = make_job(JobKind.VIDEO, ["summary"], {"source": {"title": "t"}}).id

    with services.session() as session:

        def note_progress(job: Job, runs: dict[str, FeatureRun]) -> list[Event]:
            session.execute(
                update(FeatureRun).where(FeatureRun.job_id == job_id).values(error_ref="kept")
            )
            runs["summary"].progress = 0.3
            return []

        change_job(session, None, job_id, note_progress)

    _, runs = stored(services, job_id)
    assert (runs["summary"].progress, runs["summary"].error_ref) == (0.3, "kept")


def test_the_jobs_own_columns_changed_by_the_mutation_are_written(
    services: WorkerServices, make_job: MakeJob
) -> None:
    job_id = make_job(JobKind.VIDEO, ["summary"], {"source": {"title": "t"}, "url": "u"}).id

    def erase_inputs(job: Job, _runs: dict[str, FeatureRun]) -> list[Event]:
        job.input = {"url": "u"}
        return []

    with services.session() as session:
        change_job(session, None, job_id, erase_inputs)

    job, _ = stored(services, job_id)
    assert job.input == {"url": "u"}


def test_a_mutation_that_gives_up_leaves_nothing_behind(
    services: WorkerServices, make_job: MakeJob
) -> None:
    job_id = make_job(JobKind.VIDEO, ["summary"], {"source": {"title": "t"}}).id
    before, _ = stored(services, job_id)
    events_before = len(services.bus.read(str(job_id)))

    def give_up(job: Job, runs: dict[str, FeatureRun]) -> list[Event]:
        runs["summary"].status = "running"
        raise Skip("not ours")

    with pytest.raises(Skip), services.session() as session:
        change_job(session, services.bus, job_id, give_up)

    job, runs = stored(services, job_id)
    assert (job.version, runs["summary"].status) == (before.version, "queued")
    assert len(services.bus.read(str(job_id))) == events_before


def test_an_unknown_job_is_not_found(services: WorkerServices) -> None:
    called: list[str] = []

    def mutate(job: Job, _runs: dict[str, FeatureRun]) -> list[Event]:
        called.append(str(job.id))
        return []

    with pytest.raises(NotFound), services.session() as session:
        change_job(session, None, uuid.uuid4(), mutate)
    assert called == []
