"""Celery signal handlers: per-process setup after a fork, and the worker's presence."""

from __future__ import annotations

from typing import Any

import structlog
from celery.signals import worker_process_init, worker_ready, worker_shutdown
from sqlalchemy import text

from refract.core.db import dispose_after_fork
from refract.jobs.celery_app import settings_of
from refract.jobs.progress import redis_from_url
from refract.ops.presence import Presence
from tasks.services import get_services, reset_services

log = structlog.get_logger(__name__)

# This worker's entry in Redis (the dashboard's "workers online"), once it is ready.
_presence: Presence | None = None


@worker_process_init.connect
def _after_fork(**_kwargs: Any) -> None:
    # A prefork child must not share the parent's pooled connections or Redis sockets.
    dispose_after_fork()
    reset_services()


@worker_ready.connect
def _announce(sender: Any = None, **_kwargs: Any) -> None:
    # sender is the worker's Consumer: its hostname, app, and the controller's pool size.
    global _presence
    settings = settings_of(sender.app) if sender is not None else None
    if settings is None or settings.redis_url is None:
        return
    queues = sorted(sender.app.amqp.queues.consume_from or {})
    concurrency = int(getattr(sender.controller, "concurrency", 0) or 0)
    _presence = Presence(
        redis_from_url(settings.effective_redis_url), sender.hostname, queues, concurrency
    )
    _presence.start()
    log.info("worker_announced", hostname=sender.hostname, queues=queues)


@worker_ready.connect
def _warm_up(sender: Any = None, **_kwargs: Any) -> None:
    # Build this process's services and open their first connections now (the model
    # SDK's import and client alone take about half a second), so that the first
    # visitor's task does not wait for them. Only where the tasks run in this process
    # (threads, solo): a prefork child builds its own after the fork. Services that are
    # down now only postpone it to the first task.
    pool = str(sender.app.conf.worker_pool) if sender is not None else ""
    if pool not in ("threads", "solo"):
        return
    try:
        services = get_services()
        with services.session() as session:
            session.execute(text("SELECT 1"))  # the pool's first connection
        services.redis.ping()
    except Exception as exc:
        log.warning("worker_warm_up_failed", error=type(exc).__name__)
    else:
        log.info("worker_warmed_up")


@worker_shutdown.connect
def _withdraw(**_kwargs: Any) -> None:
    global _presence
    if _presence is not None:
        _presence.stop()
        _presence = None
