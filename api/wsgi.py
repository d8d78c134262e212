"""The WSGI entry point: ``gunicorn api.wsgi:app``.

The one module that builds the app at import time, because gunicorn imports it by name;
settings come from the environment. Everything else calls :func:`api.create_app`.
"""

from __future__ import annotations

from api import create_app

app = create_app()
