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

from refract.core.db import build_sessionmaker, session_scope
from refract.core.models import Base, Job
from refract.core.settings import Settings
from refract.imaging.storage import DiskStore
from refract.jobs.catalog import JobKind
from refract.jobs.progress import ProgressBus
from refract.jobs.store import NewJob, add_job
from refract.youtube.cache import YouTubeMaterial
from tasks.heartbeat import Heartbeats
from tasks.services import WorkerServices
from tests.support.database_faults import DatabaseFaults
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
    yield build_sessionmaker(task_engine)
    with task_engine.begin() as connection:
        connection.execute(text("TRUNCATE jobs, feature_runs, artifacts CASCADE"))


@pytest.fixture
def backend() -> StubBackend:
    """The stub model backend the test's services use."""
    return StubBackend()


@pytest.fixture
def worker_settings(sessions: sessionmaker[Session], redis_url: str, tmp_path: Path) -> Settings:
    """The worker's settings (a test may override this fixture or copy them)."""
    return Settings(
        database_url=sessions.kw["bind"].url.render_as_string(hide_password=False),
        redis_url=redis_url,
        model_backend="local",
        media_dir=tmp_path / "media",
        youtube_transcripts=False,
        # Short, so that the tests about liveness and bounds do not wait long.
        heartbeat_interval_s=0.05,
        heartbeat_timeout_s=0.5,
        store_retry_s=2.0,
    )


@pytest.fixture
def services(
    sessions: sessionmaker[Session],
    worker_settings: Settings,
    redis_url: str,
    backend: StubBackend,
) -> Iterator[WorkerServices]:
    """A worker's services, built as a worker builds them, around the stub backend."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    youtube = YouTubeMaterial(worker_settings, client, transcripts=False)
    heartbeats = Heartbeats(lambda: session_scope(sessions), worker_settings.heartbeat_interval_s)
    yield WorkerServices(
        settings=worker_settings,
        sessions=sessions,
        redis=client,
        bus=ProgressBus(client),
        backend=backend,
        store=DiskStore(worker_settings.media_dir),
        youtube=youtube,
        heartbeats=heartbeats,
    )
    heartbeats.stop()
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


@pytest.fixture
def database_faults(sessions: sessionmaker[Session]) -> Iterator[DatabaseFaults]:
    """Commit failures to arm during a test."""
    faults = DatabaseFaults(sessions)
    yield faults
    faults.close()
