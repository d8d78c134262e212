"""Plain values every layer shares: an image's bytes, a video's material, its comments.

They carry no behaviour beyond simple properties and import nothing of Refract, so the
imaging helpers, YouTube ingestion, the local analyses and the model gateway can all use
them without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ImageBlob:
    """Image bytes and their media type."""

    data: bytes
    mime_type: str


@dataclass(frozen=True)
class TranscriptLine:
    """One timed line of a transcript."""

    start: float
    text: str


@dataclass(frozen=True)
class Comment:
    """One viewer comment."""

    text: str
    author: str | None = None
    likes: int = 0
    published_at: str | None = None
    replies: int = 0


@dataclass(frozen=True)
class VideoMaterial:
    """What is known about a video: from an inline ``source`` or fetched from YouTube."""

    title: str = ""
    description: str = ""
    url: str | None = None
    video_id: str | None = None
    transcript: tuple[TranscriptLine, ...] = ()
    comments: tuple[Comment, ...] = ()
    duration_s: float | None = None

    @property
    def transcript_span_s(self) -> float:
        """The time of the last transcript line (0 without a transcript)."""
        return max((line.start for line in self.transcript), default=0.0)
