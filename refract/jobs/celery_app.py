"""The Celery configuration that producers and workers share: broker, routes, messages.

The API only sends tasks by name (:mod:`refract.jobs.dispatch`) and never imports task
bodies, so it builds its Celery app here; ``worker/app.py`` adds what only a worker needs
(the pool, the task modules, beat's schedule) on top of the same configuration.

Redis is the broker (unless ``REFRACT_BROKER_URL`` says otherwise) and always the result
backend, so that chords join in Redis. A Redis broker is served by
:class:`refract.jobs.broker.Transport`, kombu's Redis transport fixed so that a channel
outliving its lost connection raises a connection error (Celery reconnects) rather than an
``AttributeError`` (Celery dies). Tasks are routed to the ``text``, ``image`` and
``maintenance`` queues by name pattern.
"""

from __future__ import annotations

from weakref import WeakKeyDictionary

from celery import Celery

from refract.core.settings import Settings
from refract.jobs.broker import transport_for
from refract.jobs.catalog import ALL_QUEUES, TEXT_QUEUE
from refract.jobs.result_backend import send_only as send_only_backend

_SETTINGS: WeakKeyDictionary[Celery, Settings] = WeakKeyDictionary()


def create_celery_app(
    settings: Settings, *, set_as_current: bool = False, send_only: bool = False
) -> Celery:
    """A Celery app that can send Refract's tasks (and, configured further, run them).

    ``send_only`` is for a process that sends tasks and never reads a result (the API):
    its result backend does not subscribe to what it sends (:mod:`refract.jobs.result_backend`).
    """
    app = Celery("refract", set_as_current=set_as_current)
    transport = {
        # Redis redelivers an unacknowledged message after this; it must stay above the
        # longest task, or a slow model call would run twice.
        "visibility_timeout": settings.visibility_timeout_s,
        # A broker that does not answer must fail a publish fast (the API then leaves
        # the job to the reconciler) instead of holding the request.
        "socket_connect_timeout": 5,
    }
    broker_url = settings.effective_broker_url
    app.conf.update(
        broker_url=broker_url,
        # None (another broker) leaves the choice to kombu, by the URL's scheme.
        broker_transport=transport_for(broker_url),
        result_backend=(
            send_only_backend(settings.effective_redis_url)
            if send_only
            else settings.effective_redis_url
        ),
        broker_transport_options=transport,
        result_backend_transport_options={"retry_policy": {"timeout": 5.0}},
        broker_connection_retry_on_startup=True,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_default_queue=TEXT_QUEUE,
        task_routes={f"refract.{queue}.*": {"queue": queue} for queue in ALL_QUEUES},
        result_expires=24 * 3600,
        # No "task-sent" event per task sent: one more Redis publish on the submit
        # request's path for each feature, for Flower's "sent" state alone (workers'
        # events stay off too, see worker/app.py; Flower turns them on when it watches).
        task_send_sent_event=False,
    )
    # Beside the app, not in its conf: `celery inspect conf` and Flower show the conf,
    # and the settings hold database and Redis URLs with their passwords.
    _SETTINGS[app] = settings
    return app


def settings_of(app: Celery) -> Settings | None:
    """The settings ``app`` (or ``celery.current_app``, a proxy) was made with; ``None``
    for an app made elsewhere."""
    real = getattr(app, "_get_current_object", lambda: app)()
    return _SETTINGS.get(real)
