"""What the API's views share, built once per app by ``create_app``."""

from __future__ import annotations

from dataclasses import dataclass

from celery import Celery
from flask import current_app

from refract.access.signing import Signer
from refract.core.settings import Settings
from refract.imaging.storage import MediaStore
from refract.jobs.progress import ProgressBus

# Below the progress Redis client's 10 s socket timeout: a blocking XREAD must return
# (empty) before the socket gives up on it.
DEFAULT_SSE_BLOCK_MS = 5000


@dataclass
class Services:
    """Per-app services: settings, the progress bus, media storage, the Celery producer,
    the URL signer."""

    settings: Settings
    bus: ProgressBus
    store: MediaStore
    # Used only to send tasks by name (refract.jobs.dispatch); task bodies are never imported.
    celery: Celery
    # Signs the artifact URLs of every answer (refract.access.signing).
    signer: Signer
    sse_block_ms: int = DEFAULT_SSE_BLOCK_MS


def services() -> Services:
    """The current app's services."""
    found: Services = current_app.extensions["refract"]
    return found
