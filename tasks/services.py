"""What a worker process needs to run tasks, built once per process on first use.

Built lazily (not at import) from the environment's settings, and guarded by a lock
because the threads pool runs many tasks at once in one process.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import redis
from sqlalchemy.orm import Session, sessionmaker

from refract.core.db import get_sessionmaker, init_engine, session_scope
from refract.core.settings import Settings, load_settings
from refract.gateway import build_backend
from refract.gateway.base import ModelBackend
from refract.gateway.memo import ReplyMemo
from refract.imaging.storage import MediaStore, open_store
from refract.jobs.celery_app import settings_of
from refract.jobs.progress import ProgressBus, redis_from_url
from refract.jobs.resync import committed_state
from refract.youtube.cache import YouTubeMaterial
from tasks.heartbeat import Heartbeats


@dataclass
class WorkerServices:
    """Process-wide services shared by every task in this worker."""

    settings: Settings
    sessions: sessionmaker[Session]
    redis: redis.Redis[str]
    bus: ProgressBus
    backend: ModelBackend
    store: MediaStore
    youtube: YouTubeMaterial
    heartbeats: Heartbeats

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A short session that commits on success and rolls back on error."""
        with session_scope(self.sessions) as session:
            yield session


_lock = threading.Lock()
_services: WorkerServices | None = None


def build_services(settings: Settings) -> WorkerServices:
    """Connect to the database and Redis and build the model backend."""
    init_engine(settings)
    client = redis_from_url(settings.effective_redis_url)
    sessions = get_sessionmaker()
    return WorkerServices(
        settings=settings,
        sessions=sessions,
        redis=client,
        bus=ProgressBus(
            client,
            maxlen=settings.event_stream_maxlen,
            ttl_s=settings.snapshot_ttl_s,
            reload=committed_state(sessions),
        ),
        backend=worker_backend(settings, client),
        store=open_store(settings, max_connections=settings.worker_concurrency),
        youtube=YouTubeMaterial(settings, client, transcripts=settings.youtube_transcripts),
        heartbeats=Heartbeats(lambda: session_scope(sessions), settings.heartbeat_interval_s),
    )


def worker_backend(settings: Settings, client: redis.Redis[str]) -> ModelBackend:
    """The model backend, behind the reply memo when it calls a paid, rate-limited model.

    Identical inputs (the same video pasted by many visitors) then cost one Gemini call
    per prompt version and language across every worker. The local backend is free and
    instant, so it is left bare: a memo would only add Redis round trips.
    """
    backend = build_backend(settings, client)
    if backend.name != "gemini" or settings.reply_cache_ttl_s <= 0:
        return backend
    return ReplyMemo(backend, client, model=settings.text_model, ttl_s=settings.reply_cache_ttl_s)


def get_services() -> WorkerServices:
    """This process's services, built from the app's (or the environment's) settings."""
    global _services
    if _services is None:
        with _lock:
            if _services is None:
                from celery import current_app

                settings = settings_of(current_app) or load_settings()
                _services = build_services(settings)
    return _services


def reset_services() -> None:
    """Forget the services (after a fork, so the child builds its own connections)."""
    global _services
    with _lock:
        _services = None
