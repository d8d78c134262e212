"""What every test package shares: the services a test run starts for itself, one way to
build settings, and the ``services`` marker that ``make unit`` leaves out.

A test run touches nothing it did not make: Redis is a redis-server of its own, started the
first time a test needs it and stopped at the end; every Postgres database is made for the
run (through the server's maintenance database) and dropped afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from refract.core.settings import Settings
from tests.support.services import PostgresServer, RedisDb, RedisServer

# Requesting one of these (directly or through another fixture) marks a test ``services``.
SERVICE_FIXTURES = frozenset({"redis_server", "postgres_server"})


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``services`` every test that needs Postgres or Redis: those using the fixtures
    above, and the integration tests (whose ``refract up`` may start a redis-server)."""
    for item in items:
        fixtures = SERVICE_FIXTURES.intersection(getattr(item, "fixturenames", ()))
        if fixtures or item.get_closest_marker("integration"):
            item.add_marker(pytest.mark.services)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """This run's own redis-server on a free port, stopped when the run ends."""
    with RedisServer(tmp_path_factory.mktemp("redis-server")) as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """A database of the run's Redis, empty at the start of the test and emptied after."""
    with redis_server.fresh_database(RedisDb.TEST) as url:
        yield url


@pytest.fixture(scope="session")
def postgres_server() -> PostgresServer:
    """The Postgres server to make databases on (``REFRACT_TEST_PG_ADMIN``)."""
    return PostgresServer()


@pytest.fixture
def media_dir(tmp_path: Path) -> Path:
    """Where this test's images are stored."""
    return tmp_path / "media"


@pytest.fixture
def settings_values(media_dir: Path) -> dict[str, Any]:
    """The values ``make_settings`` starts from. A test package overrides this fixture to
    add its own, asking for ``settings_values`` to extend these."""
    # The tests of the front door ask for REFRACT_AUTH=required themselves; the others
    # call the API as a loopback deployment with auth off does.
    return {"media_dir": media_dir, "auth": "off", "secret_key": "test-secret-key"}


@pytest.fixture
def make_settings(settings_values: dict[str, Any]) -> Callable[..., Settings]:
    """Build ``Settings`` from ``settings_values``, with per-call overrides."""

    def build(**overrides: Any) -> Settings:
        return Settings(**{**settings_values, **overrides})

    return build
