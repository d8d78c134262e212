"""Entry point for Flower: ``celery -A worker.flower flower`` (compose's ``flower``).

Flower runs Refract's own Celery app, so its broker comes from the same settings as the
workers' (``REFRACT_BROKER_URL``, else ``REFRACT_REDIS_URL``) and it knows the same
queues. Like ``worker.main`` it builds the app at import time, because Celery's command
line imports it by name.
"""

from __future__ import annotations

from refract.core.settings import load_settings
from refract.jobs.celery_app import create_celery_app

app = create_celery_app(load_settings())
# Flower reads queue lengths with a client it picks by the broker URL's scheme. Refract's
# fixed Redis transport (for workers that must outlive a Redis restart) would name itself
# in that URL and leave Flower without one; Flower only reads, so kombu's own will do.
app.conf.broker_transport = None
