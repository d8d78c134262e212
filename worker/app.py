"""The worker's Celery app: the shared configuration plus what only a worker needs.

Late acknowledgement with reject-on-worker-lost and a prefetch of one mean a message is
only gone once its task has finished; the threads pool suits tasks that wait on HTTP
calls. The task modules are named here as strings, so nothing else imports them.
"""

from __future__ import annotations

from celery import Celery

from refract.core.settings import Settings, load_settings
from refract.jobs.catalog import PURGE_TASK, RECONCILE_TASK
from refract.jobs.celery_app import create_celery_app

TASK_MODULES = [
    "tasks.summary",
    "tasks.comments",
    "tasks.thumbnail",
    "tasks.caption",
    "tasks.stylize",
    "tasks.card",
    "tasks.reconcile",
    "tasks.retention",
]


def create_worker_app(settings: Settings | None = None) -> Celery:
    """The app ``refract worker`` and ``refract beat`` run (settings from the environment)."""
    settings = settings or load_settings()
    app = create_celery_app(settings, set_as_current=True)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_pool="threads",
        worker_concurrency=settings.worker_concurrency,
        worker_hijack_root_logger=False,
        # Task events (received, started, succeeded: three broker messages per task)
        # only matter while a monitor watches; Flower turns them on in the workers it
        # watches (its `enable_events`), so nobody pays for them unwatched.
        worker_send_task_events=False,
        include=TASK_MODULES,
        beat_schedule={
            "reconcile": {
                "task": RECONCILE_TASK,
                "schedule": settings.reconcile_interval_s,
                "options": {"expires": settings.reconcile_interval_s},
            },
            "purge-expired": {
                "task": PURGE_TASK,
                "schedule": settings.retention_interval_s,
                "options": {"expires": settings.retention_interval_s},
            },
        },
    )
    return app
