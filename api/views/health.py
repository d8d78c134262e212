"""Liveness (``/healthz``) and readiness (``/readyz``: database, Redis, broker)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog
from flask import Blueprint, Response, json
from sqlalchemy import text

from api.db import get_db
from api.openapi import operations
from api.services import Services, services
from refract.core.errors import ServiceUnavailable

log = structlog.get_logger(__name__)

bp = Blueprint("health", __name__)

BROKER_TIMEOUT_S = 3


class NotReady(ServiceUnavailable):
    """A dependency is down; the problem document lists every check."""

    def __init__(self, detail: str, checks: dict[str, dict[str, Any]]) -> None:
        super().__init__(detail, retry_after=5)
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
            # A readiness probe reports whatever went wrong; it must not crash.
            log.warning("readiness_check_failed", check=name, error=str(exc))
            checks[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        else:
            checks[name] = {"ok": True}
    failed = [name for name, check in checks.items() if not check["ok"]]
    if failed:
        raise NotReady(f"unavailable: {', '.join(failed)}", checks)
    return _json({"status": "ok", "checks": checks})


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
