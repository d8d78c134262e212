"""The task layer: the feature runner and the reconciler called directly, in-process,
against a real Postgres database and a real Redis, with a stub model backend.

No Celery worker runs here (Celery's testing guide: test the task's logic as a plain
function); the end-to-end paths through real workers are in ``tests/integration``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from refract.core.models import Base, Job
from refract.core.settings import Settings
from refract.imaging.storage import MediaStore
from refract.jobs.catalog import JobKind
from refract.jobs.progress import ProgressBus
from refract.jobs.store import NewJob, add_job
from refract.youtube.cache import YouTubeMaterial
from tasks.services import WorkerServices
from tests.support.services import PostgresServer
from tests.support.stub_backend import StubBackend


@pytest.fixture(scope="session")
def task_engine(postgres_server: PostgresServer) -> Iterator[Engine]:
    """A database made for this session's task tests, with the models' schema."""
    with postgres_server.fresh_database("refract_tasks_test") as url:
        engine = create_engine(url)
        Base.metadata.create_all(engine)
        yield engine
        engine.dispose()


@pytest.fixture
def sessions(task_engine: Engine) -> Iterator[sessionmaker[Session]]:
    """Sessions on the task database; every table is emptied after the test."""
    yield sessionmaker(task_engine, expire_on_commit=False)
    with task_engine.begin() as connection:
        connection.execute(text("TRUNCATE jobs, feature_runs, artifacts CASCADE"))


@pytest.fixture
def backend() -> StubBackend:
    """The stub model backend the test's services use."""
    return StubBackend()


@pytest.fixture
def services(
    sessions: sessionmaker[Session],
    redis_url: str,
    backend: StubBackend,
    tmp_path: Path,
) -> Iterator[WorkerServices]:
    """A worker's services, built as a worker builds them, around the stub backend."""
    settings = Settings(
        database_url=str(sessions.kw["bind"].url.render_as_string(hide_password=False)),
        redis_url=redis_url,
        model_backend="local",
        media_dir=tmp_path / "media",
        youtube_transcripts=False,
    )
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    youtube = YouTubeMaterial(settings, client, transcripts=False)
    yield WorkerServices(
        settings=settings,
        sessions=sessions,
        redis=client,
        bus=ProgressBus(client),
        backend=backend,
        store=MediaStore(settings.media_dir),
        youtube=youtube,
    )
    youtube.close()
    client.close()


@pytest.fixture
def make_job(sessions: sessionmaker[Session]) -> Callable[..., Job]:
    """Create and commit a job (inputs as the API would store them)."""

    def create(kind: JobKind, features: list[str], data: dict[str, Any] | None = None) -> Job:
        with sessions() as session:
            job = add_job(session, NewJob(kind, features, "en", data or {}))
            session.commit()
            return job

    return create
