"""One pydantic schema per feature result.

The text features' schemas double as Gemini's ``response_schema``, so they use only what
that schema language takes: no defaults, no free-form dicts. Checks that a schema cannot
express (times, shares) are validators; a reply that fails them is
``invalid_model_output``.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

_MMSS = re.compile(r"^(?:(\d+):)?([0-5]?\d):([0-5]\d)$")


def parse_timestamp(value: str) -> int:
    """Seconds in an ``mm:ss`` or ``h:mm:ss`` timestamp; ``ValueError`` if malformed."""
    match = _MMSS.match(value.strip())
    if not match:
        raise ValueError(f"{value!r} is not an mm:ss time")
    hours, minutes, seconds = match.groups()
    return int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds)


def format_timestamp(seconds: float) -> str:
    """``mm:ss`` for times under an hour, ``h:mm:ss`` beyond."""
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


class _Result(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Chapter(_Result):
    """A chapter of the video, starting at ``start`` (``mm:ss``)."""

    # The pattern goes into Gemini's response schema too, so the model is held to it.
    start: str = Field(
        description="chapter start as mm:ss (h:mm:ss past an hour)",
        pattern=r"^(?:\d+:)?[0-5]?\d:[0-5]\d$",
    )
    title: str

    @field_validator("start")
    @classmethod
    def _valid_time(cls, value: str) -> str:
        parse_timestamp(value)
        return value.strip()


class SummaryResult(_Result):
    """``summary``: what the video says."""

    tldr: str = Field(min_length=1)
    key_points: list[str]
    chapters: list[Chapter]
    topics: list[str]
    language: str = Field(description="the language spoken in the video, as a code like en or ko")


class Sentiment(_Result):
    """Shares of positive, neutral and negative comments; they add up to one."""

    positive: float = Field(ge=0, le=1)
    neutral: float = Field(ge=0, le=1)
    negative: float = Field(ge=0, le=1)


class Theme(_Result):
    """A recurring theme in the comments, its share and one example comment."""

    theme: str
    share: float = Field(ge=0, le=1)
    example: str


class NotableComment(_Result):
    """A comment worth showing, and why."""

    text: str
    why: str


class CommentsResult(_Result):
    """``comments``: what viewers say and how they feel."""

    overview: str = Field(min_length=1)
    sentiment: Sentiment
    themes: list[Theme]
    questions: list[str]
    notable: list[NotableComment]
    spam_share: float = Field(ge=0, le=1)
    toxic_share: float = Field(ge=0, le=1)
    comment_count: int = Field(ge=0, description="how many comments were analysed")


class FaceInImage(_Result):
    """A face seen in an image."""

    description: str
    expression: str


class ClickAppeal(_Result):
    """How likely the thumbnail is to be clicked, 1 to 10, and why."""

    score: int = Field(ge=1, le=10)
    reasons: list[str]


class ThumbnailResult(_Result):
    """``thumbnail``: what the thumbnail shows and how well it works."""

    description: str = Field(min_length=1)
    text_on_image: list[str]
    faces: list[FaceInImage]
    dominant_colors: list[str]
    click_appeal: ClickAppeal
    suggestions: list[str]


class CaptionResult(_Result):
    """``caption``: a caption and description of the visitor's photo."""

    caption: str = Field(min_length=1)
    description: str
    people_count: int = Field(ge=0)
    mood: str
    setting: str


class ImageResult(_Result):
    """``stylize`` and ``card``: the image made, by artifact, and what the model said.

    The image's URL is not stored: the job resource adds it beside ``artifact_id``. What
    the feature said beside the image is stored with it (``stylize``: ``subject``,
    ``people``, ``found_by``, ``message``; ``card``: ``portrait``, and from the local
    backend ``design``; the local backend's language fields): see docs/API.md.
    """

    artifact_id: str
    content_type: str
    width: int
    height: int
    note: str | None = None
