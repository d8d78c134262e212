"""The offline ``local`` backend: real analyses without a model service.

Extractive summaries (TextRank over TF-IDF), VADER sentiment over comments, image
statistics and Haar-cascade faces for thumbnails and captions, an OpenCV cartoon restyle
and a Pillow-drawn card. Every reply names the method that produced it in ``model``. The
written results are in English whatever ``language`` asks for; extracted sentences stay in
the video's own language.
"""

from __future__ import annotations

from typing import Any

from refract.analysis import comments, picture, summary
from refract.analysis.cartoon import cartoonize
from refract.core.errors import FeatureError
from refract.core.material import ImageBlob, VideoMaterial
from refract.core.settings import Settings
from refract.gateway.base import ModelBackend, ModelReply, Usage
from refract.imaging.cardart import CARD_SIZE, draw_card
from refract.imaging.pixels import ImageDecodeError
from refract.imaging.stats import ImageStats, image_stats
from refract.observability import metrics
from refract.observability.usage import UsageCounter

SUMMARY_MODEL = "local-extractive-v1"
COMMENTS_MODEL = "local-vader-v1"
IMAGE_MODEL = "local-opencv-v1"
CARD_MODEL = "local-pillow-card-v1"
STYLIZE_SIZE = 512


def _stats(image: ImageBlob) -> ImageStats:
    try:
        return image_stats(image.data)
    except ImageDecodeError as exc:
        raise FeatureError("invalid_image", "the image cannot be read") from exc


class LocalBackend(ModelBackend):
    """The model gateway without a model: every feature computed on this machine."""

    name = "local"

    def __init__(self, settings: Settings, usage: UsageCounter | None = None) -> None:
        """``usage`` counts each feature's computation as a call, for the dashboard."""
        self.settings = settings
        self._usage = usage

    def _reply(
        self, data: dict[str, Any], model: str, image: ImageBlob | None = None
    ) -> ModelReply:
        # Counted like a model call (no tokens), so the metrics show where features ran.
        metrics.model_call(model, "ok")
        if self._usage is not None:
            self._usage.record(model, "ok")
        return ModelReply(
            data=data,
            backend=self.name,
            model=model,
            usage=Usage(),
            image=image,
            prompt_version=None,
        )

    def summarize_video(self, video: VideoMaterial, *, language: str) -> ModelReply:
        """An extractive summary of the transcript (or of the title and description)."""
        return self._reply(summary.summarize(video), SUMMARY_MODEL)

    def analyze_comments(self, video: VideoMaterial, *, language: str) -> ModelReply:
        """Sentiment, themes, questions, spam and toxicity of the video's comments."""
        return self._reply(comments.analyze(video.comments), COMMENTS_MODEL)

    def analyze_thumbnail(self, image: ImageBlob, *, title: str, language: str) -> ModelReply:
        """The thumbnail described from its statistics, with a heuristic click appeal."""
        return self._reply(picture.thumbnail_result(_stats(image), title=title), IMAGE_MODEL)

    def caption_photo(self, image: ImageBlob, *, language: str) -> ModelReply:
        """A caption from faces, light and colour; the setting is marked as a guess."""
        return self._reply(picture.caption_result(_stats(image)), IMAGE_MODEL)

    def stylize_face(self, face: ImageBlob) -> ModelReply:
        """A toon-shaded cartoon of the face, as a square PNG."""
        try:
            png = cartoonize(face.data, size=STYLIZE_SIZE)
        except ImageDecodeError as exc:
            raise FeatureError("invalid_image", "the face image cannot be read") from exc
        note = (
            f"Offline cartoon restyle ({STYLIZE_SIZE}x{STYLIZE_SIZE}): edge-preserving "
            "smoothing, cel shading and ink lines drawn with OpenCV; not a generated 3D model."
        )
        return self._reply({"note": note}, IMAGE_MODEL, ImageBlob(png, "image/png"))

    def compose_card(
        self, portrait: ImageBlob, *, caption: str, prompt: str, language: str
    ) -> ModelReply:
        """The photo card drawn with Pillow: portrait, caption, prompt and footer."""
        try:
            png = draw_card(portrait.data, caption, prompt, language=language)
        except (OSError, ValueError) as exc:
            raise FeatureError("invalid_image", "the portrait cannot be read") from exc
        width, height = CARD_SIZE
        note = (
            f"Card drawn offline ({width}x{height} px, 4x6 in at 300 dpi); the prompt is "
            "printed on the card, not used to generate imagery."
        )
        return self._reply({"note": note}, CARD_MODEL, ImageBlob(png, "image/png"))
