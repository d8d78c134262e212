"""The one error handler: every failure leaves the API as RFC 9457 problem+json.

Refract's own :class:`~refract.core.errors.ProblemError` carries its status, detail, field
errors and ``Retry-After``; Werkzeug's HTTP exceptions (unknown route, wrong method, a
body over ``MAX_CONTENT_LENGTH``, unparsable multipart) are mapped to the same shape.
A dependency that is down (the database, Redis, the broker) is a ``503`` with
``Retry-After``, whichever view ran into it: views only raise, the mapping is here.
Anything else is a bug, logged with its traceback and answered with a generic 500.

Every problem document carries a ``reference``, the request's id (also sent as
``X-Request-ID``), and every 5xx one a stable ``code``. The text of the exception behind
a 5xx is never sent: it is in the log lines that carry the same reference.
"""

from __future__ import annotations

import uuid
from http import HTTPStatus
from typing import Any

import redis.exceptions
import structlog
from flask import Flask, Response, current_app, json, redirect, request
from kombu.exceptions import OperationalError as BrokerOperationalError
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from refract.core.db import database_unavailable
from refract.core.errors import (
    BrokerUnavailable,
    DatabaseUnavailable,
    LoginRequired,
    ProblemError,
    RedisUnavailable,
    ServiceUnavailable,
)

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"
INTERNAL_ERROR_DETAIL = "an unexpected error occurred; quote the reference"

# Werkzeug's default descriptions talk about "the browser"; these are for API clients.
_DETAILS = {
    400: "the request could not be parsed",
    404: "no such resource",
    405: "this method is not allowed on this resource",
    413: "the request body is too large",
    415: "unsupported media type",
}

# Redis errors that mean "not reachable now", not a bug in how it is used.
_REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


def request_reference() -> str:
    """The current request's id (bound by ``api/__init__.py``), bound now if it is not."""
    bound = structlog.contextvars.get_contextvars().get("request_id")
    if bound:
        return str(bound)
    # The error came before the request id was bound; bind one so that the log lines
    # and the X-Request-ID header carry the reference the client is given.
    reference = uuid.uuid4().hex
    structlog.contextvars.bind_contextvars(request_id=reference)
    return reference


def problem_response(
    status: int,
    title: str,
    detail: str,
    *,
    code: str | None = None,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
    extensions: dict[str, Any] | None = None,
) -> Response:
    """A problem+json response, with the request's ``reference`` (and ``code``, which a
    5xx must have)."""
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    body["detail"] = detail
    if code is None and status >= 500:
        code = "internal_error"
    if code is not None:
        body["code"] = code
    body["reference"] = request_reference()
    if errors:
        body["errors"] = errors
    body.update(extensions or {})
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)
    response.headers["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def dependency_unavailable(exc: BaseException) -> ServiceUnavailable | None:
    """The 503 that ``exc`` means if it (or what it was raised from) is a dependency
    being down, else ``None``."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, SQLAlchemyError) and database_unavailable(current):
            return DatabaseUnavailable()
        if isinstance(current, _REDIS_DOWN):
            return RedisUnavailable()
        if isinstance(current, BrokerOperationalError):
            return BrokerUnavailable()
        current = current.__cause__
    return None


def handle_error(exc: Exception) -> BaseResponse | HTTPException:
    """Render any exception a view raised as problem+json."""
    if isinstance(exc, LoginRequired):
        # A person at a browser, not a client: show them the login form.
        return redirect(exc.location, code=303)
    if isinstance(exc, ProblemError):
        return _from_problem(exc)
    if isinstance(exc, HTTPException):
        return _from_http_exception(exc)
    reference = request_reference()
    unavailable = dependency_unavailable(exc)
    if unavailable is not None:
        # Expected in an outage and repeated by every request: the error, no traceback.
        log.warning(
            "dependency_unavailable",
            code=unavailable.code,
            reference=reference,
            method=request.method,
            path=request.path,
            error=f"{type(exc).__name__}: {exc}",
        )
        return _from_problem(unavailable, logged=True)
    log.error(
        "unhandled_error",
        reference=reference,
        method=request.method,
        path=request.path,
        error=f"{type(exc).__name__}: {exc}",
        exc_info=exc,
    )
    return problem_response(
        500, "Internal Server Error", INTERNAL_ERROR_DETAIL, code="internal_error"
    )


def _from_problem(exc: ProblemError, *, logged: bool = False) -> Response:
    headers = dict(exc.headers)
    if exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    body = exc.body()
    if exc.status >= 500 and not logged:
        log.warning(
            "problem",
            status=exc.status,
            code=body.get("code"),
            detail=exc.detail,
            reference=request_reference(),
            path=request.path,
        )
    return problem_response(
        exc.status,
        body["title"],
        body["detail"],
        code=body.get("code"),
        errors=body.get("errors"),
        headers=headers,
        extensions=getattr(exc, "extensions", None),
    )


def _from_http_exception(exc: HTTPException) -> Response | HTTPException:
    if exc.response is not None:
        # abort(response): the view already built the exact response it wants.
        return exc.response  # type: ignore[return-value]
    status = exc.code or 500
    if status < 400:
        return exc
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = exc.name
    if status == 413:
        title = "Content Too Large"
    elif status == 422:
        title = "Unprocessable Content"
    custom = exc.description if exc.description != type(exc).description else None
    detail = custom or _DETAILS.get(status) or title
    if status == 413 and custom is None and current_app.config.get("MAX_CONTENT_LENGTH"):
        detail = f"the request body is larger than {current_app.config['MAX_CONTENT_LENGTH']} bytes"
    # Keep protocol headers such as Allow (405) but not Werkzeug's HTML content type.
    headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
    code = None
    if status >= 500:
        # A Werkzeug 5xx may wrap anything: its text goes to the log, not to the client.
        log.error(
            "http_error",
            status=status,
            reference=request_reference(),
            path=request.path,
            error=f"{type(exc).__name__}: {exc.description}",
        )
        code = "service_unavailable" if status == 503 else "internal_error"
        detail = ServiceUnavailable.default_detail if status == 503 else INTERNAL_ERROR_DETAIL
        if status == 503:
            headers.setdefault("Retry-After", str(ServiceUnavailable.default_retry_after))
    return problem_response(status, title, detail, code=code, headers=headers)


def init_app(app: Flask) -> None:
    """Route every exception through :func:`handle_error`."""
    app.register_error_handler(Exception, handle_error)
