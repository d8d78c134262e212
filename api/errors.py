"""The one error handler: every failure leaves the API as RFC 9457 problem+json.

Refract's own :class:`~refract.core.errors.ProblemError` carries its status, detail, field
errors and ``Retry-After``; Werkzeug's HTTP exceptions (unknown route, wrong method, a
body over ``MAX_CONTENT_LENGTH``, unparsable multipart) are mapped to the same shape;
anything else is a bug, logged with its traceback and answered with a bare 500.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import structlog
from flask import Flask, Response, current_app, json, request
from werkzeug.exceptions import HTTPException

from refract.core.errors import ProblemError

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"

# Werkzeug's default descriptions talk about "the browser"; these are for API clients.
_DETAILS = {
    400: "the request could not be parsed",
    404: "no such resource",
    405: "this method is not allowed on this resource",
    413: "the request body is too large",
    415: "unsupported media type",
}


def problem_response(
    status: int,
    title: str,
    detail: str,
    *,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
    extensions: dict[str, Any] | None = None,
) -> Response:
    """A problem+json response."""
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status}
    body["detail"] = detail
    if errors:
        body["errors"] = errors
    body.update(extensions or {})
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)
    response.headers["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def handle_error(exc: Exception) -> Response | HTTPException:
    """Render any exception a view raised as problem+json."""
    if isinstance(exc, ProblemError):
        return _from_problem(exc)
    if isinstance(exc, HTTPException):
        return _from_http_exception(exc)
    log.error(
        "unhandled_error",
        method=request.method,
        path=request.path,
        error=f"{type(exc).__name__}: {exc}",
        exc_info=exc,
    )
    return problem_response(500, "Internal Server Error", "an unexpected error occurred")


def _from_problem(exc: ProblemError) -> Response:
    headers = dict(exc.headers)
    if exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    if exc.status >= 500:
        log.warning("problem", status=exc.status, detail=exc.detail, path=request.path)
    body = exc.body()
    return problem_response(
        exc.status,
        body["title"],
        body["detail"],
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
    return problem_response(status, title, detail, headers=headers)


def init_app(app: Flask) -> None:
    """Route every exception through :func:`handle_error`."""
    app.register_error_handler(Exception, handle_error)
