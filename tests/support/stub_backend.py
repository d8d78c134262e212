"""A model backend for the task-layer tests: canned, schema-valid replies, and a record
of every call, so a test can tell whether (and how often) a feature reached the model."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from PIL import Image

from refract.core.material import ImageBlob, VideoMaterial
from refract.gateway.base import ModelBackend, ModelReply, Usage
from refract.imaging.subjects import Subject

MODEL = "stub-model-1"


def png(size: tuple[int, int] = (64, 64), color: tuple[int, int, int] = (200, 120, 40)) -> bytes:
    """A small real PNG."""
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="PNG")
    return out.getvalue()


@dataclass
class StubBackend(ModelBackend):
    """Answers every feature at once; ``before_reply`` runs first (to fail or to wait)."""

    name: str = "stub"
    calls: list[str] = field(default_factory=list)
    before_reply: Callable[[str], None] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _reply(
        self, feature: str, data: dict[str, object], image: ImageBlob | None = None
    ) -> ModelReply:
        with self._lock:
            self.calls.append(feature)
        if self.before_reply is not None:
            self.before_reply(feature)
        return ModelReply(
            data=dict(data),
            backend=self.name,
            model=MODEL,
            usage=Usage(input_tokens=10, output_tokens=5),
            image=image,
            prompt_version=f"{feature}.v1",
        )

    def summarize_video(self, video: VideoMaterial, *, language: str) -> ModelReply:
        """A one-point summary naming the video's title."""
        return self._reply(
            "summary",
            {
                "tldr": f"About {video.title or 'the video'}.",
                "key_points": ["one point"],
                "chapters": [{"start": "00:00", "title": "Start"}],
                "topics": ["testing"],
                "language": language,
            },
        )

    def analyze_comments(self, video: VideoMaterial, *, language: str) -> ModelReply:
        """Neutral comments, counted."""
        return self._reply(
            "comments",
            {
                "overview": "People talk.",
                "sentiment": {"positive": 0.0, "neutral": 1.0, "negative": 0.0},
                "themes": [],
                "questions": [],
                "notable": [],
                "spam_share": 0.0,
                "toxic_share": 0.0,
                "comment_count": len(video.comments),
            },
        )

    def analyze_thumbnail(self, image: ImageBlob, *, title: str, language: str) -> ModelReply:
        """A plain thumbnail description."""
        return self._reply(
            "thumbnail",
            {
                "description": f"A thumbnail for {title}.",
                "text_on_image": [],
                "faces": [],
                "dominant_colors": ["orange"],
                "click_appeal": {"score": 5, "reasons": ["plain"]},
                "suggestions": [],
            },
        )

    def caption_photo(self, image: ImageBlob, *, language: str) -> ModelReply:
        """A caption for any photo."""
        return self._reply(
            "caption",
            {
                "caption": "A visitor at the booth.",
                "description": "A person smiling.",
                "people_count": 1,
                "mood": "happy",
                "setting": "indoors",
            },
        )

    def stylize_face(self, face: ImageBlob, *, language: str = "en") -> ModelReply:
        """A small orange portrait."""
        return self._reply("stylize", {"note": "stub portrait"}, ImageBlob(png(), "image/png"))

    def stylize_photo(
        self, photo: ImageBlob, subject: Subject, *, language: str = "en"
    ) -> ModelReply:
        """A small green portrait of the people found."""
        image = ImageBlob(png(color=(40, 160, 60)), "image/png")
        return self._reply("stylize", {"note": f"stub {subject.kind} portrait"}, image)

    def compose_card(
        self,
        portrait: ImageBlob,
        *,
        caption: str,
        prompt: str,
        language: str,
        from_photo: bool = False,
    ) -> ModelReply:
        """A small blue card."""
        card = ImageBlob(png((60, 90), (40, 80, 200)), "image/png")
        return self._reply("card", {"note": f"{caption} / {prompt}"}, card)
