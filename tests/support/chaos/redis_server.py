"""A redis-server that a chaos scenario can kill and start again, empty, on the same port."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Self

import redis

from launch.embedded import EmbeddedRedis, EmbeddedRedisError
from tests.support.services import free_port


class RestartableRedis:
    """A private redis-server on a fixed free port, keeping nothing on disk: killing it and
    starting it again gives an empty Redis at the same URL, which clients must reconnect to."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.starts = 0
        self._server: EmbeddedRedis | None = None

    def url(self, db: int = 0) -> str:
        """The URL of database ``db``."""
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self, timeout_s: float = 15) -> Self:
        """Start the server on :attr:`port` (retrying while the port is still held)."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.starts += 1
            try:
                self._server = EmbeddedRedis(self.workdir / f"run-{self.starts}", port=self.port)
                self._server.start()
                return self
            except EmbeddedRedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL the server and reap it: everything it held is gone."""
        if self._server is not None and self._server.process is not None:
            self._server.process.kill()
            self._server.process.wait()
        self._server = None

    def stop(self) -> None:
        """Stop the server."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    def client(self, db: int = 0) -> redis.Redis[str]:
        """A client of database ``db`` (the caller closes it)."""
        return redis.Redis.from_url(self.url(db), decode_responses=True, socket_timeout=5)
