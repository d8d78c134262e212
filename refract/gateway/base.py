"""The model gateway's interface: one method per feature, the same for every backend.

A backend returns a :class:`ModelReply` or raises :class:`~refract.core.errors.FeatureError`
(``failed`` or ``blocked``, with a stable code). Tasks never see SDK types.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from refract.core.material import ImageBlob, VideoMaterial
from refract.imaging.subjects import Subject


@dataclass(frozen=True)
class Usage:
    """Tokens a model call consumed (``None`` when the backend does not count them)."""

    input_tokens: int | None = None
    output_tokens: int | None = None


@dataclass
class ModelReply:
    """A feature's answer: its validated result, and for image features the image."""

    data: dict[str, Any]
    backend: str
    model: str
    usage: Usage = field(default_factory=Usage)
    image: ImageBlob | None = None
    prompt_version: str | None = None


class ModelBackend(ABC):
    """What every backend (``gemini``, ``local``) offers, one method per feature."""

    name: str

    @abstractmethod
    def summarize_video(self, video: VideoMaterial, *, language: str) -> ModelReply:
        """``summary``: the video (by URL) or its transcript → :class:`SummaryResult`."""

    @abstractmethod
    def analyze_comments(self, video: VideoMaterial, *, language: str) -> ModelReply:
        """``comments``: the comments → :class:`CommentsResult`."""

    @abstractmethod
    def analyze_thumbnail(self, image: ImageBlob, *, title: str, language: str) -> ModelReply:
        """``thumbnail``: the thumbnail image → :class:`ThumbnailResult`."""

    @abstractmethod
    def caption_photo(self, image: ImageBlob, *, language: str) -> ModelReply:
        """``caption``: the visitor's photo → :class:`CaptionResult`."""

    @abstractmethod
    def stylize_face(self, face: ImageBlob, *, language: str = "en") -> ModelReply:
        """``stylize``: a head-and-shoulders crop → a 3D-character portrait (``reply.image``)."""

    @abstractmethod
    def stylize_photo(
        self, photo: ImageBlob, subject: Subject, *, language: str = "en"
    ) -> ModelReply:
        """``stylize`` without a usable frontal face: the whole photo and the people found in
        it (``subject``: a tilted or profile face, a group from afar) → a portrait of them."""

    @abstractmethod
    def compose_card(
        self,
        portrait: ImageBlob,
        *,
        caption: str,
        prompt: str,
        language: str,
        from_photo: bool = False,
    ) -> ModelReply:
        """``card``: portrait + caption + visitor's prompt → the finished card image.

        ``from_photo``: ``portrait`` is the visitor's photo itself, as nobody was found in
        it to restyle (``stylize`` failed ``no_face_detected``)."""
