"""Pydantic models of the HTTP API: what requests may carry and what responses look like.

The same classes validate requests (``api/validation.py``) and generate the OpenAPI
document (``api/openapi.py``), so the document cannot drift from what the server accepts.
Size bounds are generous for real use and small enough that one request cannot make the
server build gigantic objects.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from refract.jobs.catalog import FEATURES, JobKind, JobStatus, features_of, resolve_features
from refract.jobs.resource import FeatureError, JobResource
from refract.youtube.links import InvalidVideoLink, parse_video_url

# A short BCP 47-like tag: "en", "ko", "pt-BR", "zh-Hant-TW".
LANGUAGE_PATTERN = r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8}){0,3}$"
MAX_PROMPT_CHARS = 500
MAX_TRANSCRIPT_LINES = 5000
MAX_COMMENTS = 2000
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"


def _language_field() -> Any:
    """The ``language`` field both job kinds share (checked by :func:`_checked_language`)."""
    return Field(
        default="en",
        max_length=16,
        # The pattern is checked by a validator, for a clearer message than a regex.
        json_schema_extra={"pattern": LANGUAGE_PATTERN},
        description="Language of the written results, a short BCP 47 tag such as `en` or `pt-BR`.",
        examples=["en"],
    )


def _features_schema(kind: JobKind) -> dict[str, Any]:
    """What the document says of a ``features`` list: the kind's names, and each
    feature's inputs alongside it (what :func:`refract.jobs.catalog.resolve_features`
    checks)."""
    names = features_of(kind)
    schema: dict[str, Any] = {"items": {"type": "string", "enum": names}}
    rules = [
        {
            "if": {"contains": {"const": name}},
            "then": {"allOf": [{"contains": {"const": need}} for need in FEATURES[name].needs]},
        }
        for name in names
        if FEATURES[name].needs
    ]
    if rules:
        schema["allOf"] = rules
    return schema


def _without_null(schema: dict[str, Any]) -> None:
    """Drop the ``null`` branch of an optional field's ``anyOf`` (in place)."""
    branches = [b for b in schema.pop("anyOf", []) if b.get("type") != "null"]
    if len(branches) == 1:
        schema.update(branches[0])
    elif branches:
        schema["anyOf"] = branches
    schema.pop("default", None)


def _checked_language(value: str) -> str:
    """``value`` if it looks like a language tag, else a pydantic error."""
    if not re.fullmatch(LANGUAGE_PATTERN, value):
        raise PydanticCustomError(
            "language", "must be a short language tag such as en, ko or pt-BR"
        )
    return value


# Postgres stores no NUL character, so api/validation.parse refuses one in any string of a
# request (422); the document says so on every string it does not already constrain.
NO_NUL = "^[^\\u0000]*$"
_CONSTRAINED = frozenset({"pattern", "format", "enum", "const"})


def _no_nul(schema: dict[str, Any]) -> None:
    """Give every free-form string property (and string array item) the NO_NUL pattern."""
    for prop in schema.get("properties", {}).values():
        for branch in [prop, *prop.get("anyOf", [])]:
            items = branch.get("items")
            for candidate in (branch, items if isinstance(items, dict) else {}):
                if candidate.get("type") == "string" and not _CONSTRAINED & candidate.keys():
                    candidate["pattern"] = NO_NUL


class _Request(BaseModel):
    # Unknown fields are refused rather than ignored: a typo such as "feature" would
    # otherwise silently run every feature. Strings are taken as sent (no stripping), so
    # that the document's lengths and patterns hold exactly; the URL parser trims a link.
    model_config = ConfigDict(extra="forbid", json_schema_extra=_no_nul)


# --- video jobs --------------------------------------------------------------------------


class TranscriptLineIn(_Request):
    """One line of a transcript, starting ``start`` seconds into the video."""

    start: float = Field(ge=0, le=7 * 24 * 3600, description="Seconds from the start.")
    text: str = Field(min_length=1, max_length=2000)


class CommentIn(_Request):
    """One viewer comment."""

    text: str = Field(min_length=1, max_length=10_000)
    author: str | None = Field(default=None, max_length=200)
    likes: int = Field(default=0, ge=0, le=10**12)
    published_at: str | None = Field(
        default=None, max_length=64, description="When it was posted (ISO 8601)."
    )


class VideoSource(_Request):
    """The video's material sent inline, for offline use and tests."""

    title: str = Field(default="", max_length=500)
    description: str = Field(default="", max_length=20_000)
    transcript: list[TranscriptLineIn] = Field(
        default_factory=list, max_length=MAX_TRANSCRIPT_LINES
    )
    comments: list[CommentIn] = Field(default_factory=list, max_length=MAX_COMMENTS)
    # The image inside is checked by content, which no pattern can say: the format names it.
    thumbnail: Annotated[str, Field(json_schema_extra={"format": "image-data-url"})] | None = Field(
        default=None,
        description=(
            "The thumbnail as a `data:image/(jpeg|png|webp);base64,...` URL. Other URLs "
            "are refused: the server never fetches a URL a client chose."
        ),
    )


def _url_or_source_schema(schema: dict[str, Any]) -> None:
    """The document says what the validator checks: exactly one of url and source, not
    null (and, as for every request, no NUL in its strings)."""
    _no_nul(schema)
    schema["oneOf"] = [
        {
            "required": ["url"],
            "properties": {"url": {"type": "string"}, "source": {"type": "null"}},
        },
        {
            "required": ["source"],
            "properties": {"source": {"type": "object"}, "url": {"type": "null"}},
        },
    ]


class VideoJobRequest(_Request):
    """Analyse a YouTube video: give its `url`, or its material inline as `source`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra=_url_or_source_schema,
    )

    kind: Literal["video"] = Field(description="Always `video` for a JSON body.")
    # Not a pattern: the accepted forms are an allow-list parser's, which no regex states
    # honestly (refract/youtube/links.py); the format names it. Constraints sit on the
    # string itself, so that the document puts them in the string branch of `anyOf`.
    url: (
        Annotated[str, Field(max_length=2048, json_schema_extra={"format": "youtube-video-url"})]
        | None
    ) = Field(
        default=None,
        description="A YouTube video link in any common form (watch, youtu.be, shorts, embed).",
        examples=["https://www.youtube.com/watch?v=9bZkp7q19f0"],
    )
    source: VideoSource | None = None
    features: (
        Annotated[
            list[str], Field(max_length=10, json_schema_extra=_features_schema(JobKind.VIDEO))
        ]
        | None
    ) = Field(
        default=None,
        description="A subset of `summary`, `comments`, `thumbnail`; all three by default.",
    )
    language: str = _language_field()

    @field_validator("url")
    @classmethod
    def _youtube_only(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return parse_video_url(value).canonical_url
        except InvalidVideoLink as exc:
            raise PydanticCustomError("youtube_url", str(exc)) from exc

    @field_validator("features")
    @classmethod
    def _known_features(cls, value: list[str] | None) -> list[str] | None:
        return _checked_features(JobKind.VIDEO, value)

    @field_validator("language")
    @classmethod
    def _language(cls, value: str) -> str:
        return _checked_language(value)

    @model_validator(mode="after")
    def _url_or_source(self) -> VideoJobRequest:
        # A model-level error has no location; the "field" context names the field the
        # client should fix (see api/validation.py).
        if self.url is not None and self.source is not None:
            raise PydanticCustomError(
                "url_or_source", "give either url or source, not both", {"field": "source"}
            )
        if self.url is None and self.source is None:
            raise PydanticCustomError(
                "url_or_source", "url (or an inline source) is required", {"field": "url"}
            )
        return self


# --- photo cards -------------------------------------------------------------------------


class PhotoCardForm(_Request):
    """A photo card, sent as `multipart/form-data`."""

    kind: Literal["photocard"] = Field(description="Always `photocard` for a multipart body.")
    photo: bytes = Field(
        description="The visitor's photo: a JPEG, PNG or WebP file (checked by content)."
    )
    prompt: str = Field(
        default="",
        max_length=MAX_PROMPT_CHARS,
        description="The visitor's extra prompt for the card.",
    )
    # A form field cannot be null: absent means all three, so the document has no null.
    features: (
        Annotated[list[str], Field(json_schema_extra=_features_schema(JobKind.PHOTOCARD))] | None
    ) = Field(
        default=None,
        json_schema_extra=_without_null,
        description=(
            "A subset of `caption`, `stylize`, `card` (comma-separated, or the field "
            "repeated); `card` needs the other two. All three by default."
        ),
    )
    language: str = _language_field()

    @field_validator("features")
    @classmethod
    def _known_features(cls, value: list[str] | None) -> list[str] | None:
        return _checked_features(JobKind.PHOTOCARD, value)

    @field_validator("language")
    @classmethod
    def _language(cls, value: str) -> str:
        return _checked_language(value)


def _checked_features(kind: JobKind, value: list[str] | None) -> list[str] | None:
    """The catalog's check, as a pydantic error on the ``features`` field."""
    if value is None:
        return None
    try:
        return resolve_features(kind, value)
    except ValueError as exc:
        raise PydanticCustomError("feature", str(exc)) from exc


class IdempotencyHeaders(BaseModel):
    """Headers of `POST /api/v1/jobs`."""

    model_config = ConfigDict(populate_by_name=True)

    idempotency_key: str | None = Field(
        default=None,
        alias="Idempotency-Key",
        json_schema_extra={"pattern": IDEMPOTENCY_KEY_PATTERN},
        description="Repeat a request safely: the same key and body return the same job (200).",
    )

    @field_validator("idempotency_key")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(IDEMPOTENCY_KEY_PATTERN, value):
            raise PydanticCustomError(
                "idempotency_key", "must be 1 to 255 printable ASCII characters"
            )
        return value


class _Query(BaseModel):
    # Unknown query parameters (cache busters such as `_=1732...`) are ignored; values are
    # taken as sent, so that the document's lengths hold exactly.
    model_config = ConfigDict(extra="ignore", json_schema_extra=_no_nul)


class JobListQuery(_Query):
    """Query parameters of `GET /api/v1/jobs`."""

    status: JobStatus | None = None
    kind: JobKind | None = None
    limit: int = Field(default=20, ge=1, le=100)
    cursor: (
        Annotated[str, Field(max_length=512, json_schema_extra={"format": "opaque-cursor"})] | None
    ) = Field(
        default=None,
        description="`next_cursor` of the previous page (opaque; a made-up one is `422`).",
    )
    key: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="Admin keys only: the jobs of the API key with this name.",
    )


class EventsQuery(_Query):
    """Query parameters of `GET /api/v1/jobs/{job_id}/events`."""

    last_event_id: str | None = Field(
        default=None,
        max_length=64,
        description="Resume after this event id (same as the `Last-Event-ID` header).",
    )


# --- responses ---------------------------------------------------------------------------


class JobList(BaseModel):
    """A page of jobs, newest first."""

    items: list[JobResource]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


class ProblemField(BaseModel):
    """One field that failed validation."""

    field: str
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem document (`application/problem+json`).

    A 5xx never carries the text of the error behind it: quote its `reference` to the
    operators, it names the server's log lines of the request.
    """

    type: str = "about:blank"
    title: str
    status: int
    detail: str = Field(description="What went wrong, for a human.")
    code: str | None = Field(
        default=None,
        description=(
            "A stable, machine-readable code; always present on a 5xx: `internal_error`, "
            "`service_unavailable`, `database_unavailable`, `redis_unavailable`, "
            "`broker_unavailable`, `not_ready`."
        ),
        examples=["database_unavailable"],
    )
    reference: str = Field(
        description=(
            "The request's id, also sent as the `X-Request-ID` header: quote it when "
            "reporting a problem."
        ),
        examples=["3b8e5f0c9d2a4e7f8a1b6c0d2e4f6a8b"],
    )
    errors: list[ProblemField] | None = None


class Health(BaseModel):
    """The process is alive."""

    status: Literal["ok"]


class ReadinessCheck(BaseModel):
    """One dependency's state."""

    ok: bool
    error: Literal["unreachable", "timed out", "failed"] | None = Field(
        default=None,
        description="Why the check failed, in general terms (the details are in the log).",
    )


class Readiness(BaseModel):
    """Whether every dependency answered."""

    status: Literal["ok", "unavailable"]
    checks: dict[str, ReadinessCheck]


class NotReadyProblem(Problem):
    """`/readyz` when a dependency is down: a problem with each check's result."""

    checks: dict[str, ReadinessCheck]


class FeatureEventData(BaseModel):
    """`data` of a `feature` event on the progress stream."""

    job_id: str
    feature: str
    status: str
    progress: float
    attempts: int
    error: FeatureError | None = None
    step: str | None = Field(
        default=None,
        description="What the feature is doing: `started`, `finished`, or a progress step.",
    )


class JobEventFeature(BaseModel):
    """One feature's state inside a `job` event."""

    status: str
    progress: float


class JobEventData(BaseModel):
    """`data` of a `job` event; the stream ends after the one whose `final` is true."""

    job_id: str
    status: JobStatus
    progress: float
    final: bool
    features: dict[str, JobEventFeature]
