"""Refract's HTTP API (Flask). Build it with :func:`create_app`; nothing happens at import.

``api/wsgi.py`` is the WSGI entry point for gunicorn (``gunicorn api.wsgi:app``).
"""

from __future__ import annotations

import uuid

import structlog
from flask import Flask, Request, Response, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface

from api import admin, auth, db, errors, limits
from api.auth import secret_of
from api.intake import ApiRequest
from api.services import Services
from refract.access.signing import Signer
from refract.core.db import get_sessionmaker, init_engine
from refract.core.settings import Settings, load_settings
from refract.imaging.storage import open_store
from refract.jobs.celery_app import create_celery_app
from refract.jobs.progress import ProgressBus, redis_from_url
from refract.jobs.resync import committed_state

# Where the dashboard's session cookie is read (api/auth.py's SESSION_BLUEPRINTS): the
# dashboard and /metrics. Everywhere else a session is never used.
SESSION_PATHS = ("/admin", "/metrics")


class DashboardSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, opened only where one can matter: under
    :data:`SESSION_PATHS`, or for a request that carries the session's cookie.

    Flask opens the session of every request before it is routed, building a signing
    serializer each time: a cost the API's hot paths (reads, 304s, submissions) would
    pay for a cookie they never send. Without the cookie and outside those paths the
    session is Flask's null one, which is never saved (nothing there writes to it).
    """

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        """The cookie's session, or none (Flask's null one) where it cannot matter."""
        if not request.path.startswith(SESSION_PATHS) and (
            self.get_cookie_name(app) not in request.cookies
        ):
            return None
        return super().open_session(app, request)


def create_app(settings: Settings | None = None) -> Flask:
    """The Flask app, wired to the database, Redis, media storage and the broker.

    ``settings`` defaults to the environment's (:func:`refract.core.settings.load_settings`).
    """
    settings = settings or load_settings()
    auth.check_secret(settings)
    init_engine(settings)
    app = Flask(__name__)
    app.request_class = ApiRequest
    app.session_interface = DashboardSessions()
    app.config.update(MAX_CONTENT_LENGTH=settings.max_body_bytes)
    # Features are listed in catalog order (the order a screen shows them), not sorted.
    app.json.sort_keys = False  # type: ignore[attr-defined]
    redis_client = redis_from_url(settings.effective_redis_url)
    app.extensions["refract"] = Services(
        settings=settings,
        bus=ProgressBus(
            redis_client,
            maxlen=settings.event_stream_maxlen,
            ttl_s=settings.snapshot_ttl_s,
            reload=committed_state(get_sessionmaker()),
        ),
        store=open_store(settings),
        celery=create_celery_app(settings, send_only=True),
        signer=Signer(secret_of(settings), settings.artifact_url_ttl_s),
    )
    db.init_app(app)
    errors.init_app(app)
    _register_blueprints(app)
    # The request id first (every log line of the request has it), then the caller.
    app.before_request(_bind_request_id)
    auth.init_app(app, settings)
    limits.init_app(app)
    admin.init_app(app, settings, secret_of(settings))
    app.after_request(_echo_request_id)
    return app


def _register_blueprints(app: Flask) -> None:
    # Imported here so that importing ``api`` stays cheap and free of side effects.
    from api.openapi import views as openapi
    from api.views import artifacts, control, health, jobs, metrics

    for blueprint in (jobs.bp, control.bp, artifacts.bp, health.bp, openapi.bp, metrics.bp):
        app.register_blueprint(blueprint)


def _bind_request_id() -> None:
    # Every log line of a request carries its id; a client-sent id helps trace a booth.
    given = request.headers.get("X-Request-ID", "")
    request_id = given if given.isascii() and 0 < len(given) <= 64 else uuid.uuid4().hex
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)


def _echo_request_id(response: Response) -> Response:
    bound = structlog.contextvars.get_contextvars().get("request_id")
    if bound:
        response.headers["X-Request-ID"] = str(bound)
    return response


__all__ = ["create_app"]
