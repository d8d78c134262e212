"""Authentication: every call under ``/api/v1`` carries an API key, except the public ones.

``Authorization: Bearer <key>`` is checked before the view runs (:func:`authenticate`,
a ``before_request`` hook); the caller becomes :data:`flask.g.principal`
(:mod:`api.principal`). Public without a key: health and readiness, the OpenAPI
document and its docs page, and artifacts, whose signed URLs are their own credential.
With ``REFRACT_AUTH=off`` every caller is :data:`~api.principal.ANONYMOUS`; that is
allowed only on a loopback address (:func:`check_startup`, run by the launchers), and a
caller from another address is refused even so (an app served some other way, e.g.
``gunicorn -b 0.0.0.0 api.wsgi:app``, has had no launcher check its address).

The dashboard (``/admin``) and ``/metrics`` also take the dashboard's session cookie, set
when an operator logs in with an admin key (:mod:`api.admin.session`).

A looked-up key is trusted for ``key_cache_s`` seconds in this process, so a busy client
costs one database read per interval, and a revocation takes at most that long.
"""

from __future__ import annotations

import ipaddress
import threading
import time

import structlog
from flask import Flask, current_app, g, request, url_for

from api.admin.blueprint import MACHINE_PREFIXES
from api.admin.session import session_principal
from api.db import get_db
from api.principal import ANONYMOUS, Principal, Role
from api.services import services
from refract.access.keys import find_active_key, hash_secret
from refract.core.errors import Forbidden, LoginRequired, StartupRefused, Unauthorized
from refract.core.settings import Settings

# Blueprints (and endpoints) served without a key.
PUBLIC_BLUEPRINTS = frozenset({"health", "openapi"})
PUBLIC_ENDPOINTS = frozenset({"artifacts.get_artifact", "admin.login", "admin.static"})
# Blueprints a browser reaches with the dashboard's session cookie instead of a bearer key
# (api/admin/session.py): the dashboard itself, and /metrics for a logged-in admin.
SESSION_BLUEPRINTS = frozenset({"admin", "metrics"})
# Looked-up keys kept per process; past this many, the cache starts over.
CACHE_MAX = 10_000


class KeyCache:
    """Principals by secret hash (``None`` for an unknown key), each for ``ttl_s``."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._found: dict[str, tuple[float, Principal | None]] = {}
        self._lock = threading.Lock()

    def get(self, digest: str) -> tuple[bool, Principal | None]:
        """``(hit, principal)``."""
        with self._lock:
            entry = self._found.get(digest)
        if entry is None or entry[0] < time.monotonic():
            return False, None
        return True, entry[1]

    def put(self, digest: str, principal: Principal | None) -> None:
        """Remember what ``digest`` resolved to."""
        if self.ttl_s <= 0:
            return
        with self._lock:
            if len(self._found) >= CACHE_MAX:
                self._found.clear()
            self._found[digest] = (time.monotonic() + self.ttl_s, principal)


def init_app(app: Flask, settings: Settings) -> None:
    """Authenticate every request of ``app`` (registered before any other hook)."""
    app.extensions["refract.keys"] = KeyCache(settings.key_cache_s)
    app.before_request(authenticate)


def authenticate() -> None:
    """Set ``g.principal`` for this request; 401 when a key is needed and not valid."""
    settings = services().settings
    if settings.auth == "off":
        # No REMOTE_ADDR: a Unix socket, which only this machine can reach.
        if request.remote_addr and not is_loopback(request.remote_addr):
            raise Forbidden("this server runs without API keys and answers only its own machine")
        g.principal = ANONYMOUS
        return
    if request.endpoint is None or _is_public():
        return
    secret = _bearer_secret()
    if secret is None and request.blueprint in SESSION_BLUEPRINTS:
        g.principal = _session_principal()
        structlog.contextvars.bind_contextvars(key=g.principal.name)
        return
    if secret is None:
        raise Unauthorized("send your API key as 'Authorization: Bearer <key>'")
    principal = _principal_for(secret)
    if principal is None:
        raise Unauthorized("the API key is unknown or revoked")
    g.principal = principal
    structlog.contextvars.bind_contextvars(key=principal.name)


def _session_principal() -> Principal:
    """The dashboard session's admin; a person is sent to log in, a script gets 401."""
    principal = session_principal()
    if principal is not None:
        return principal
    if request.blueprint == "admin" and not request.path.startswith(MACHINE_PREFIXES):
        raise LoginRequired(url_for("admin.login", next=request.full_path.rstrip("?")))
    raise Unauthorized("log in to the dashboard or send an admin key as a bearer token")


def _is_public() -> bool:
    return request.blueprint in PUBLIC_BLUEPRINTS or request.endpoint in PUBLIC_ENDPOINTS


def _bearer_secret() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        return None
    return secret.strip()


def _principal_for(secret: str) -> Principal | None:
    cache: KeyCache = current_app.extensions["refract.keys"]
    digest = hash_secret(secret)
    hit, principal = cache.get(digest)
    if hit:
        return principal
    key = find_active_key(get_db(), secret)
    if key is not None:
        role: Role = "admin" if key.role == "admin" else "client"
        principal = Principal(key.id, key.name, role, key.rate, key.max_jobs_per_day)
    cache.put(digest, principal)
    return principal


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) only listens on this machine."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    # ::ffff:127.0.0.1, as a dual-stack socket reports an IPv4 caller.
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def check_startup(settings: Settings, host: str) -> None:
    """Refuse (``StartupRefused``, one line) to serve with auth off beyond loopback, or
    with auth on but no secret to sign artifact URLs with."""
    if settings.auth == "off" and not is_loopback(host):
        raise StartupRefused(
            f"REFRACT_AUTH=off is allowed only on a loopback address, not {host}: "
            "create keys with `refract keys create` and leave REFRACT_AUTH=required"
        )
    check_secret(settings)


def check_secret(settings: Settings) -> None:
    """Refuse to start without ``REFRACT_SECRET_KEY`` (it signs artifact URLs)."""
    if settings.secret_key is None or not settings.secret_key.get_secret_value():
        raise StartupRefused(
            "REFRACT_SECRET_KEY is not set: it signs artifact URLs and every API process "
            "must share it (e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
        )


def secret_of(settings: Settings) -> bytes:
    """The artifact-signing secret (:func:`check_secret` has made sure there is one)."""
    check_secret(settings)
    assert settings.secret_key is not None
    return settings.secret_key.get_secret_value().encode()
