"""Real services for tests, private to one test run: a redis-server of its own and
Postgres databases made fresh and dropped afterwards.

Nothing here touches what it did not create: the Redis is a child process on a free port,
and each Postgres database has a unique name and is created and dropped through the
server's maintenance database. Two test runs on one machine therefore never meet.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from enum import IntEnum
from pathlib import Path
from typing import Any

import psycopg
import redis

from launch.embedded import EmbeddedRedis, EmbeddedRedisError

# The server's maintenance database: tests connect to it only to create and drop their own.
PG_ADMIN_URL = os.environ.get(
    "REFRACT_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """The Postgres server tests make their databases on."""

    def __init__(self, admin_url: str = PG_ADMIN_URL) -> None:
        self.admin_url = admin_url

    @contextmanager
    def fresh_database(self, prefix: str = "refract_test") -> Iterator[str]:
        """Create an empty database, yield its SQLAlchemy URL, drop it afterwards."""
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        base = self.admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
        try:
            yield f"{base}/{name}"
        finally:
            with psycopg.connect(self.admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class RedisDb(IntEnum):
    """The database numbers of the private Redis, one per use, so that fixtures which are
    alive at the same time (a test's progress and broker, a module's stack) never share one."""

    TEST = 1  # the ``redis_url`` fixture: a test's own empty database
    PROGRESS = 2  # the API tests' progress bus, cache and limits
    BROKER = 3  # the API tests' Celery broker
    STACK = 4  # a module's ``refract up`` in the integration tests


class RedisServer:
    """A redis-server of this test run's own (``launch.embedded.EmbeddedRedis``), on a free
    port of 127.0.0.1, keeping nothing on disk; ``workdir`` holds its log."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._server: EmbeddedRedis | None = None

    def start(self, attempts: int = 3) -> RedisServer:
        """Start the server; try another port if a concurrent process took the chosen one."""
        for attempt in range(1, attempts + 1):
            try:
                self._server = EmbeddedRedis(self.workdir / f"attempt-{attempt}").start()
                return self
            except EmbeddedRedisError:
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")

    def stop(self) -> None:
        """Stop the server and reap it."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    @property
    def port(self) -> int:
        """The port the server listens on."""
        if self._server is None:
            raise RuntimeError("the test redis-server is not running")
        return self._server.port

    def url(self, db: int) -> str:
        """The URL of database ``db``."""
        return f"redis://127.0.0.1:{self.port}/{db}"

    def client(self, db: int, **kwargs: Any) -> redis.Redis[Any]:
        """A new client of database ``db`` (the caller closes it)."""
        return redis.Redis.from_url(self.url(db), **kwargs)

    @contextmanager
    def fresh_database(self, db: int) -> Iterator[str]:
        """Empty database ``db`` before and after, and yield its URL."""
        with self.client(db) as client:
            client.flushdb()
            try:
                yield self.url(db)
            finally:
                client.flushdb()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
