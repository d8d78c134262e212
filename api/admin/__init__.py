"""The operators' dashboard at ``/admin``: server-rendered pages, live fragments, JSON,
and the actions staff take during an event (cancel, retry, pause intake).

:func:`init_app` wires it into the API's app: the signed session cookie an admin key is
exchanged for (:mod:`api.admin.session`), the blueprint and its views. Every asset is
served by the app (``/admin/static``): a venue network may have no internet.
"""

from __future__ import annotations

from flask import Flask

from api.admin import session
from api.admin.blueprint import bp
from refract.core.settings import Settings


def init_app(app: Flask, settings: Settings, secret: bytes) -> None:
    """Register the dashboard on ``app`` (after auth, whose hook admits its sessions)."""
    # Imported for their routes, which they add to the blueprint.
    from api.admin import actions, data, formatting, guard, pages  # noqa: F401

    session.configure(app, settings, secret)
    app.register_blueprint(bp)
