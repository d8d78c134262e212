"""Refract's one exception hierarchy.

``ProblemError`` and its subclasses are what the HTTP API raises; the single error
handler in ``api/errors.py`` turns them into RFC 9457 problem+json. A 5xx problem carries a
stable ``code`` (``database_unavailable``, ...): its ``detail`` is written for the client,
never the text of the exception behind it, which goes to the logs. ``FeatureError`` is
what a feature raises when it ends without a result; the task runner records its stable
``code`` and the status it implies (``failed`` or ``blocked``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class RefractError(Exception):
    """Root of every error Refract raises on purpose."""


@dataclass
class FieldError:
    """One field that failed validation, as listed in a problem's ``errors``."""

    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        """The JSON form used in problem+json bodies."""
        return {"field": self.field, "message": self.message}


class ProblemError(RefractError):
    """An error the API reports to its client as problem+json."""

    status: int = 500
    title: str = "Internal Server Error"
    # A stable, machine-readable code; a 5xx problem without one is ``internal_error``.
    code: str | None = None

    def __init__(
        self,
        detail: str,
        *,
        errors: list[FieldError] | None = None,
        retry_after: int | None = None,
        headers: dict[str, str] | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []
        self.retry_after = retry_after
        self.headers = headers or {}
        if code is not None:
            self.code = code

    def body(self) -> dict[str, Any]:
        """The problem+json document for this error."""
        doc: dict[str, Any] = {
            "type": "about:blank",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        code = self.code or ("internal_error" if self.status >= 500 else None)
        if code is not None:
            doc["code"] = code
        if self.errors:
            doc["errors"] = [e.as_dict() for e in self.errors]
        return doc


class BadRequest(ProblemError):
    """The body could not be parsed at all (malformed JSON, broken multipart)."""

    status, title = 400, "Bad Request"


class Unauthorized(ProblemError):
    """No API key, or one that is unknown or revoked."""

    status, title = 401, "Unauthorized"

    def __init__(self, detail: str = "a valid API key is required", **kwargs: Any) -> None:
        headers = {"WWW-Authenticate": 'Bearer realm="refract"', **kwargs.pop("headers", {})}
        super().__init__(detail, headers=headers, **kwargs)


class LoginRequired(Unauthorized):
    """A dashboard page was opened without an admin session: the browser is sent to the
    login page (``location``) instead of getting problem+json."""

    def __init__(self, location: str) -> None:
        super().__init__("log in to the dashboard with an admin key")
        self.location = location


class Forbidden(ProblemError):
    """The key is valid but its role may not do this."""

    status, title = 403, "Forbidden"


class NotFound(ProblemError):
    """No such job, artifact or route."""

    status, title = 404, "Not Found"


class Conflict(ProblemError):
    """The request conflicts with the resource's state: an idempotency key reused with a
    different body, a retry of a feature that has not finished."""

    status, title = 409, "Conflict"


class Gone(ProblemError):
    """The resource existed but was erased (retention)."""

    status, title = 410, "Gone"


class PayloadTooLarge(ProblemError):
    """The body or an uploaded file is over its limit."""

    status, title = 413, "Content Too Large"


class UnsupportedMediaType(ProblemError):
    """The body or upload is of a type the endpoint does not take."""

    status, title = 415, "Unsupported Media Type"


class ValidationFailed(ProblemError):
    """The body parsed but its content is not acceptable."""

    status, title = 422, "Unprocessable Content"


class TooManyRequests(ProblemError):
    """A key went over its rate limit or its daily cap."""

    status, title = 429, "Too Many Requests"
    code = "rate_limited"


class ServiceUnavailable(ProblemError):
    """A dependency (database, Redis, broker) is down or the service is overloaded."""

    status, title = 503, "Service Unavailable"
    code = "service_unavailable"
    # What a client is told when nothing more specific is given, and when to come back.
    default_detail = "the service is unavailable right now; try again shortly"
    default_retry_after = 5

    def __init__(
        self, detail: str | None = None, *, retry_after: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(
            detail or self.default_detail,
            retry_after=self.default_retry_after if retry_after is None else retry_after,
            **kwargs,
        )


class DatabaseUnavailable(ServiceUnavailable):
    """The database could not be reached or dropped the connection."""

    code = "database_unavailable"
    default_detail = "the database is unavailable right now; try again shortly"


class RedisUnavailable(ServiceUnavailable):
    """Redis (progress, limits, caches) could not be reached or timed out."""

    code = "redis_unavailable"
    default_detail = "the progress store is unavailable right now; try again shortly"


class BrokerUnavailable(ServiceUnavailable):
    """The Celery broker could not be reached."""

    code = "broker_unavailable"
    default_detail = "the job queue is unavailable right now; try again shortly"


class Overloaded(ServiceUnavailable):
    """Admission control: the backlog is too long or intake is paused; reads still work."""

    code = "overloaded"
    default_detail = "too many jobs are waiting; try again shortly"


class StartupRefused(RefractError):
    """A process will not start with this configuration; the message says why, in a line."""


@dataclass
class FeatureError(RefractError):
    """A feature ended without a result. ``code`` is stable and shown to clients."""

    code: str
    message: str
    status: str = "failed"  # or "blocked" for a safety refusal
    details: dict[str, Any] = field(default_factory=dict)
    # For an unexpected failure: names its log lines, shown instead of the exception.
    reference: str | None = None

    def __post_init__(self) -> None:
        super().__init__(f"{self.code}: {self.message}")


class Canceled(RefractError):
    """A feature's run must stop: its job was canceled (or the run lost its claim) while
    it worked. Nothing it did is recorded; only the task runner catches it."""

    def __init__(self, doing: str) -> None:
        super().__init__(f"stopped while {doing}: the feature is no longer this run's")
        self.doing = doing


class RetryableModelError(RefractError):
    """A transient model error (429, 5xx, timeout); only the retry loop sees it."""

    def __init__(self, code: str, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after
