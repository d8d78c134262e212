"""The Celery app, built from settings.

Redis is the broker (unless ``REFRACT_BROKER_URL`` says otherwise) and always the result
backend, so that chords join in Redis. Tasks are routed to the ``text``, ``image`` and
``maintenance`` queues by name pattern; late acknowledgement with reject-on-worker-lost
and a prefetch of one mean a message is only gone once its task has finished.
"""

from __future__ import annotations

from celery import Celery

from refract.catalog import IMAGE_QUEUE, MAINTENANCE_QUEUE, RECONCILE_TASK, TEXT_QUEUE
from refract.settings import Settings, load_settings

TASK_MODULES = [
    "tasks.summary",
    "tasks.comments",
    "tasks.thumbnail",
    "tasks.caption",
    "tasks.stylize",
    "tasks.card",
    "tasks.reconcile",
]


def create_celery_app(settings: Settings | None = None) -> Celery:
    """A Celery app configured from ``settings`` (from the environment when omitted)."""
    settings = settings or load_settings()
    app = Celery("refract", set_as_current=True)
    transport = {
        # Redis redelivers an unacknowledged message after this; it must stay above the
        # longest task, or a slow model call would run twice.
        "visibility_timeout": settings.visibility_timeout_s,
        # A broker that does not answer must fail a publish fast (the API then leaves
        # the job to the reconciler) instead of holding the request.
        "socket_connect_timeout": 5,
    }
    app.conf.update(
        broker_url=settings.effective_broker_url,
        result_backend=settings.effective_redis_url,
        broker_transport_options=transport,
        result_backend_transport_options={"retry_policy": {"timeout": 5.0}},
        broker_connection_retry_on_startup=True,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_pool="threads",
        worker_concurrency=settings.worker_concurrency,
        task_default_queue=TEXT_QUEUE,
        task_routes={
            f"refract.{TEXT_QUEUE}.*": {"queue": TEXT_QUEUE},
            f"refract.{IMAGE_QUEUE}.*": {"queue": IMAGE_QUEUE},
            f"refract.{MAINTENANCE_QUEUE}.*": {"queue": MAINTENANCE_QUEUE},
        },
        result_expires=24 * 3600,
        worker_hijack_root_logger=False,
        worker_send_task_events=True,
        task_send_sent_event=True,
        include=TASK_MODULES,
        beat_schedule={
            "reconcile": {
                "task": RECONCILE_TASK,
                "schedule": settings.reconcile_interval_s,
                "options": {"expires": settings.reconcile_interval_s},
            }
        },
    )
    app.conf.refract_settings = settings
    return app
