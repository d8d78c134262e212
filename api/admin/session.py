"""The dashboard's login: an admin key exchanged for a session cookie, and CSRF tokens.

An operator pastes an admin key once; the app answers with Flask's signed session cookie
(HttpOnly, SameSite=Strict, Secure when configured) holding the key's id, the login time
and a CSRF token — never the key. Every request re-checks that the key still exists, is
an admin's and is not revoked, so revoking a key ends its sessions within
``key_cache_s``. The cookie is signed with a key derived from ``REFRACT_SECRET_KEY``,
apart from the one that signs artifact URLs.

Every state-changing request under ``/admin`` carries the session's CSRF token (a form
field or the ``X-CSRF-Token`` header) unless it authenticates with a bearer key, which a
browser never sends on its own.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
import uuid
from datetime import timedelta

from flask import Flask, current_app, request, session

from api.db import get_db
from api.principal import Principal
from refract.core.errors import Forbidden
from refract.core.models import ApiKey
from refract.core.settings import Settings

COOKIE_NAME = "refract_admin"
KEY_ID = "key_id"
LOGIN_AT = "login_at"
CSRF = "csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def configure(app: Flask, settings: Settings, secret: bytes) -> None:
    """Set up the signed session cookie ``app`` uses for the dashboard."""
    app.secret_key = hmac.new(secret, b"refract admin session", hashlib.sha256).hexdigest()
    app.config.update(
        SESSION_COOKIE_NAME=COOKIE_NAME,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=settings.admin_cookie_secure,
        PERMANENT_SESSION_LIFETIME=timedelta(seconds=settings.admin_session_s),
        # A session lasts admin_session_s from login, not from the last click.
        SESSION_REFRESH_EACH_REQUEST=False,
    )
    app.extensions["refract.admin_keys"] = AdminKeyCache(settings.key_cache_s)


class AdminKeyCache:
    """Admin principals by key id, each trusted for ``ttl_s`` (None: not an admin now)."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._found: dict[uuid.UUID, tuple[float, Principal | None]] = {}
        self._lock = threading.Lock()

    def lookup(self, key_id: uuid.UUID) -> Principal | None:
        """The admin principal of ``key_id``, from the cache or the database."""
        with self._lock:
            entry = self._found.get(key_id)
        if entry is not None and entry[0] > time.monotonic():
            return entry[1]
        key = get_db().get(ApiKey, key_id)
        principal = None
        if key is not None and key.revoked_at is None and key.role == "admin":
            principal = Principal(key.id, key.name, "admin", key.rate, key.max_jobs_per_day)
        with self._lock:
            if len(self._found) > 1000:
                self._found.clear()
            self._found[key_id] = (time.monotonic() + self.ttl_s, principal)
        return principal


def session_principal() -> Principal | None:
    """The admin this request's session cookie belongs to, if it is valid and current."""
    raw = session.get(KEY_ID)
    login_at = session.get(LOGIN_AT)
    if not isinstance(raw, str) or not isinstance(login_at, int | float):
        return None
    lifetime = current_app.permanent_session_lifetime.total_seconds()
    if time.time() - login_at > lifetime:
        session.clear()
        return None
    try:
        key_id = uuid.UUID(raw)
    except ValueError:
        return None
    cache: AdminKeyCache = current_app.extensions["refract.admin_keys"]
    return cache.lookup(key_id)


def log_in(key: ApiKey) -> None:
    """Start a session for admin ``key`` (a fresh one: no fixation of an older cookie)."""
    session.clear()
    session.permanent = True
    session[KEY_ID] = str(key.id)
    session[LOGIN_AT] = time.time()
    session[CSRF] = secrets.token_urlsafe(32)


def log_out() -> None:
    """End the session."""
    session.clear()


def csrf_token() -> str:
    """This session's CSRF token, made on first use (the login form needs one too)."""
    token = session.get(CSRF)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[CSRF] = token
    return token


def check_csrf() -> None:
    """Refuse (403) a state-changing request without this session's CSRF token."""
    if request.method in SAFE_METHODS:
        return
    if request.headers.get("Authorization", "").lower().startswith("bearer "):
        return  # a bearer key is sent only by code that holds it, never by a browser alone
    expected = session.get(CSRF)
    given = request.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or ""
    if not isinstance(expected, str) or not hmac.compare_digest(expected, given):
        raise Forbidden(
            "the form's CSRF token is missing or out of date: reload the page and try again",
            code="csrf_failed",
        )
