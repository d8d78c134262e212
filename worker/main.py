"""Entry point for the ``celery`` command: ``celery -A worker.main worker``.

This is the one module that builds the app at import time, because Celery's command
line imports it by name. ``refract worker`` and ``refract beat`` use the factory.
"""

from __future__ import annotations

import worker.signals  # noqa: F401  (connects the signal handlers)
from worker.app import create_worker_app

app = create_worker_app()
