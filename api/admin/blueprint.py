"""The dashboard's blueprint, shared by its page, live-fragment, JSON and action views.

URLs under ``/admin``: pages for people (``/admin/``, ``/admin/jobs``...), fragments the
pages' script refreshes (``/admin/live/...``), JSON for anything else (``/admin/api/...``),
and the actions, each a POST with a CSRF token.
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint(
    "admin",
    __name__,
    url_prefix="/admin",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

# Answered to a person at a browser: without a session they are sent to log in.
# Everything else (fragments, JSON) answers 401 instead, as a script expects.
MACHINE_PREFIXES = ("/admin/api/", "/admin/live/")
