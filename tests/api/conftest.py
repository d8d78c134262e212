"""Fixtures for the API tests: a fresh Postgres database per session, the run's own Redis,
and an app built by ``create_app`` for each test, with media under the test's tmp_path.

No worker runs: enqueued messages are checked on the broker's Redis lists instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
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
from tests.support.flask_client import ClosingFlaskClient
from tests.support.images import fixture_bytes
from tests.support.services import PostgresServer, RedisDb, RedisServer


@pytest.fixture(scope="session")
def database_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A database made for this test session, with the models' schema, dropped at the end."""
    with postgres_server.fresh_database("refract_api_test") as url:
        engine = create_engine(url)
        Base.metadata.create_all(engine)
        engine.dispose()
        yield url
        # The app's process-wide engine holds pooled connections to it.
        with contextlib.suppress(RuntimeError):
            get_engine().dispose()


@pytest.fixture
def redis_progress(redis_server: RedisServer) -> Iterator[redis.Redis[str]]:
    """The progress Redis database, empty at the start of each test."""
    with (
        redis_server.fresh_database(RedisDb.PROGRESS) as url,
        redis.Redis.from_url(url, decode_responses=True) as client,
    ):
        yield client


@pytest.fixture
def redis_broker(redis_server: RedisServer) -> Iterator[redis.Redis[bytes]]:
    """The broker's Redis database, empty at the start of each test."""
    with (
        redis_server.fresh_database(RedisDb.BROKER) as url,
        redis.Redis.from_url(url) as client,
    ):
        yield client


@pytest.fixture
def settings_values(
    settings_values: dict[str, Any],
    database_url: str,
    redis_server: RedisServer,
    redis_progress: redis.Redis[str],
    redis_broker: redis.Redis[bytes],
) -> dict[str, Any]:
    """The test app's settings: the session's database, the run's Redis, the local backend."""
    return {
        **settings_values,
        "database_url": database_url,
        "redis_url": redis_server.url(RedisDb.PROGRESS),
        "broker_url": redis_server.url(RedisDb.BROKER),
        "model_backend": "local",
        "poll_after_s": 2,
    }


@pytest.fixture
def make_app(make_settings: Callable[..., Settings]) -> Iterator[Callable[..., Flask]]:
    """Build apps with settings overrides; tables are emptied after the test."""

    def build(**overrides: Any) -> Flask:
        app = create_app(make_settings(**overrides))
        app.test_client_class = ClosingFlaskClient
        app.extensions["refract"].sse_block_ms = 200
        return app

    yield build
    with get_engine().begin() as connection:
        connection.execute(text("TRUNCATE jobs, feature_runs, artifacts, api_keys CASCADE"))


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
    return fixture_bytes("astronaut.png")
