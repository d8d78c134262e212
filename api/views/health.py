"""Liveness (``/healthz``) and readiness (``/readyz``: database, Redis, broker)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg.errors
import redis.exceptions
import structlog
from flask import Blueprint, Response, json
from kombu.exceptions import OperationalError as BrokerOperationalError
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from api.db import get_db
from api.openapi import operations
from api.services import Services, services
from refract.core.db import database_unavailable
from refract.core.errors import ServiceUnavailable

log = structlog.get_logger(__name__)

bp = Blueprint("health", __name__)

BROKER_TIMEOUT_S = 3


class NotReady(ServiceUnavailable):
    """A dependency is down; the problem document lists every check."""

    code = "not_ready"

    def __init__(self, detail: str, checks: dict[str, dict[str, Any]]) -> None:
        super().__init__(detail)
        # Extension member of the problem document (RFC 9457 section 3.2).
        self.extensions = {"checks": checks}


@bp.get("/healthz")
@operations.healthz
def healthz() -> Response:
    """Liveness: the process answers (no dependency is checked)."""
    return _json({"status": "ok"})


@bp.get("/readyz")
@operations.readyz
def readyz() -> Response:
    """Readiness: the database, Redis and the broker are reachable."""
    svc = services()
    probes: dict[str, Callable[[Services], None]] = {
        "database": _check_database,
        "redis": _check_redis,
        "broker": _check_broker,
    }
    checks: dict[str, dict[str, Any]] = {}
    for name, probe in probes.items():
        try:
            probe(svc)
        except Exception as exc:
            # A readiness probe reports whatever went wrong; it must not crash. The client
            # gets a generic reason; host names and driver messages stay in the log.
            reason = failure_reason(exc)
            log.warning(
                "readiness_check_failed",
                check=name,
                reason=reason,
                error=f"{type(exc).__name__}: {exc}",
            )
            checks[name] = {"ok": False, "error": reason}
        else:
            checks[name] = {"ok": True}
    failed = [name for name, check in checks.items() if not check["ok"]]
    if failed:
        raise NotReady(f"unavailable: {', '.join(failed)}", checks)
    return _json({"status": "ok", "checks": checks})


# socket.timeout is TimeoutError; redis and psycopg have their own.
_TIMEOUTS = (TimeoutError, redis.exceptions.TimeoutError, psycopg.errors.ConnectionTimeout)


def failure_reason(exc: BaseException) -> str:
    """What a failed check tells the client: ``timed out``, ``unreachable`` or ``failed``."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        # SQLAlchemy keeps the driver's exception as ``orig``; others chain with ``from``.
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else current.__cause__
    if any(isinstance(e, _TIMEOUTS) for e in chain):
        return "timed out"
    if any(_unreachable(e) for e in chain):
        return "unreachable"
    return "failed"


def _unreachable(exc: BaseException) -> bool:
    if isinstance(exc, SQLAlchemyError):
        return database_unavailable(exc)
    return isinstance(exc, redis.exceptions.ConnectionError | BrokerOperationalError | OSError)


def _check_database(_svc: Services) -> None:
    get_db().execute(text("SELECT 1"))


def _check_redis(svc: Services) -> None:
    svc.bus.client.ping()


def _check_broker(svc: Services) -> None:
    with svc.celery.connection_for_write(connect_timeout=BROKER_TIMEOUT_S) as connection:
        connection.ensure_connection(max_retries=1, interval_start=0, timeout=BROKER_TIMEOUT_S)


def _json(body: Any, status: int = 200) -> Response:
    response = Response(json.dumps(body), status=status, mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response
