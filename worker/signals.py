"""Celery signal handlers: per-process setup after a fork."""

from __future__ import annotations

from typing import Any

from celery.signals import worker_process_init

from refract.core.db import dispose_after_fork
from tasks.services import reset_services


@worker_process_init.connect
def _after_fork(**_kwargs: Any) -> None:
    # A prefork child must not share the parent's pooled connections or Redis sockets.
    dispose_after_fork()
    reset_services()
