"""The HTTP servers ``refract api`` and ``refract events`` run: gunicorn, two shapes.

- **The API** (:data:`API_WORKER`): gthread workers that read each request in their event
  loop (a slow client holds no thread) and answer their own errors in problem+json.
- **Event streams** (:data:`EVENTS_WORKER`): gevent workers, where an open Server-Sent
  Events stream is a greenlet waiting on Redis, not a thread: one process keeps thousands
  open. Behind the reverse proxy (``deploy/nginx.conf``) every
  ``/api/v1/jobs/<id>/events`` goes here and everything else to the API, so a crowd
  following its jobs never takes a thread the API's reads need. gunicorn's gevent worker
  patches the standard library before the app is built in the worker; psycopg and
  redis-py then wait cooperatively.

Both serve the same app (:func:`api.create_app`), built in each worker after the fork.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gunicorn.app.base import BaseApplication

from refract.core.settings import Settings
from refract.observability.multiproc import ensure_multiprocess_dir, mark_process_dead

API_WORKER = "launch.http_worker.ApiWorker"
EVENTS_WORKER = "gevent"


@dataclass(frozen=True)
class ServerShape:
    """How many workers of which kind, and how much each holds at once."""

    worker_class: str
    workers: int
    threads: int = 1
    # gevent: open connections per worker (each stream is one).
    connections: int = 1000
    access_log: bool = False


def serve(settings: Settings, bind: str, shape: ServerShape) -> None:
    """Run gunicorn with ``shape`` on ``bind`` until it is stopped."""
    # Before gunicorn forks: every worker records into files that any worker's /metrics
    # sums (the directory `refract up` made, else a private one).
    ensure_multiprocess_dir()

    class _Server(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", bind)
            self.cfg.set("workers", shape.workers)
            self.cfg.set("worker_class", shape.worker_class)
            self.cfg.set("threads", shape.threads)
            self.cfg.set("worker_connections", shape.connections)
            self.cfg.set("timeout", 120)
            self.cfg.set("graceful_timeout", 10)
            self.cfg.set("accesslog", "-" if shape.access_log else None)
            self.cfg.set("child_exit", _worker_exited)

        def load(self) -> Any:
            # Built in each worker process after the fork (and, under gevent, after the
            # standard library was patched): no shared or blocking connections.
            from api import create_app

            return create_app(settings)

    _Server().run()


def _worker_exited(_server: Any, worker: Any) -> None:
    """gunicorn's ``child_exit`` hook (in the master): retire the worker's metrics files."""
    mark_process_dead(worker.pid)
