"""Fixtures for the API tests: a fresh Postgres database per session, real Redis, and an
app built by ``create_app`` for each test, with media under the test's tmp_path.

No worker runs: enqueued messages are checked on the broker's Redis lists instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text

from api import create_app
from refract.core.db import get_engine
from refract.core.models import Base
from refract.core.settings import Settings
from tests.api.helpers import BROKER_DB, PROGRESS_DB
from tests.support.services import REDIS_BASE_URL, fresh_postgres_database

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A database made for this test session, with the models' schema, dropped at the end."""
    with fresh_postgres_database("refract_api_test") as url:
        engine = create_engine(url)
        Base.metadata.create_all(engine)
        engine.dispose()
        yield url
        # The app's process-wide engine holds pooled connections to it.
        with contextlib.suppress(RuntimeError):
            get_engine().dispose()


@pytest.fixture
def redis_progress() -> Iterator[redis.Redis]:
    """The progress Redis database, empty at the start of each test."""
    client = redis.Redis.from_url(f"{REDIS_BASE_URL}/{PROGRESS_DB}", decode_responses=True)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def redis_broker() -> Iterator[redis.Redis]:
    """The broker's Redis database, empty at the start of each test."""
    client = redis.Redis.from_url(f"{REDIS_BASE_URL}/{BROKER_DB}")
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def media_dir(tmp_path: Path) -> Path:
    """Where this test's app stores images."""
    return tmp_path / "media"


@pytest.fixture
def make_settings(
    database_url: str, media_dir: Path, redis_progress: redis.Redis, redis_broker: redis.Redis
) -> Callable[..., Settings]:
    """Settings for a test app, with overrides."""

    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": database_url,
            "redis_url": f"{REDIS_BASE_URL}/{PROGRESS_DB}",
            "broker_url": f"{REDIS_BASE_URL}/{BROKER_DB}",
            "media_dir": media_dir,
            "model_backend": "local",
            "poll_after_s": 2,
        }
        values.update(overrides)
        return Settings(**values)

    return build


@pytest.fixture
def make_app(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., Flask]]:
    """Build apps with settings overrides; tables are emptied after the test."""

    def build(**overrides: Any) -> Flask:
        app = create_app(make_settings(**overrides))
        app.extensions["refract"].sse_block_ms = 200
        return app

    yield build
    with get_engine().begin() as connection:
        connection.execute(text("TRUNCATE jobs, feature_runs, artifacts CASCADE"))


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    """An app with the default test settings."""
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of ``app``."""
    return app.test_client()


@pytest.fixture
def astronaut_png() -> bytes:
    """A real photo with one frontal face (NASA, public domain)."""
    return (FIXTURES / "astronaut.png").read_bytes()
