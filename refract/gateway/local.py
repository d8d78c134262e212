"""The offline ``local`` backend: real analyses without a model service.

Extractive summaries (TextRank over TF-IDF), VADER sentiment over comments, image
statistics and Haar-cascade faces for thumbnails and captions, an OpenCV cartoon restyle
and a Pillow-drawn card. Every reply names the method that produced it in ``model``. The
written results are in the job's language when it is ``en`` or ``ko`` (templates written
for each), otherwise in English with a note saying so (:mod:`refract.core.languages`);
extracted sentences and terms stay in the video's own language.
"""

from __future__ import annotations

from typing import Any

from refract.analysis import comments, photo, picture, summary
from refract.analysis.cartoon import cartoonize
from refract.core.errors import FeatureError
from refract.core.languages import written
from refract.core.material import ImageBlob, VideoMaterial
from refract.core.settings import Settings
from refract.gateway.base import ModelBackend, ModelReply, Usage
from refract.gateway.local_notes import card_note, stylize_note
from refract.imaging.cardart import draw_card
from refract.imaging.carddesign import design_from_prompt
from refract.imaging.pixels import ImageDecodeError, encode_png, to_bgr
from refract.imaging.stats import ImageStats, image_stats
from refract.imaging.subjects import Subject, find_subject, people_region
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
        lang = written(language)
        data = summary.summarize(video, lang.code) | lang.fields()
        return self._reply(data, SUMMARY_MODEL)

    def analyze_comments(self, video: VideoMaterial, *, language: str) -> ModelReply:
        """Sentiment, themes, questions, spam and toxicity of the video's comments."""
        lang = written(language)
        data = comments.analyze(video.comments, lang.code) | lang.fields()
        return self._reply(data, COMMENTS_MODEL)

    def analyze_thumbnail(self, image: ImageBlob, *, title: str, language: str) -> ModelReply:
        """The thumbnail described from its statistics, with a heuristic click appeal."""
        lang = written(language)
        data = picture.thumbnail_result(_stats(image), title=title, lang=lang.code)
        return self._reply(data | lang.fields(), IMAGE_MODEL)

    def caption_photo(self, image: ImageBlob, *, language: str) -> ModelReply:
        """A caption from who is in the photo, its light and its colours; the setting is
        marked as a guess."""
        lang = written(language)
        stats = _stats(image)
        data = photo.caption_result(stats, find_subject(image.data), lang.code)
        return self._reply(data | lang.fields(), IMAGE_MODEL)

    def stylize_face(self, face: ImageBlob, *, language: str = "en") -> ModelReply:
        """A flat-shaded cartoon of the head-and-shoulders crop, as a square PNG."""
        try:
            png = cartoonize(face.data, size=STYLIZE_SIZE)
        except ImageDecodeError as exc:
            raise FeatureError("invalid_image", "the face image cannot be read") from exc
        lang = written(language)
        data = {"note": stylize_note(lang.code, STYLIZE_SIZE)} | lang.fields()
        return self._reply(data, IMAGE_MODEL, ImageBlob(png, "image/png"))

    def stylize_photo(
        self, photo: ImageBlob, subject: Subject, *, language: str = "en"
    ) -> ModelReply:
        """A cartoon of the part of the photo where the people are (heads, shoulders and
        upper bodies, every one of a group), its long side ``STYLIZE_SIZE`` px."""
        try:
            bgr = to_bgr(photo.data)
        except ImageDecodeError as exc:
            raise FeatureError("invalid_image", "the photo cannot be read") from exc
        height, width = bgr.shape[:2]
        x0, y0, x1, y1 = people_region(subject.heads, width, height)
        png = cartoonize(encode_png(bgr[y0:y1, x0:x1]), size=STYLIZE_SIZE)
        lang = written(language)
        data = {"note": stylize_note(lang.code, STYLIZE_SIZE, region=(x0, y0, x1, y1))}
        return self._reply(data | lang.fields(), IMAGE_MODEL, ImageBlob(png, "image/png"))

    def compose_card(
        self,
        portrait: ImageBlob,
        *,
        caption: str,
        prompt: str,
        language: str,
        from_photo: bool = False,
    ) -> ModelReply:
        """The photo card drawn with Pillow: the portrait in a palette and motifs read from
        the visitor's prompt, the caption, the prompt itself and a footer."""
        lang = written(language)
        design = design_from_prompt(prompt)
        try:
            png = draw_card(portrait.data, caption, prompt, language=lang.code, design=design)
        except (OSError, ValueError) as exc:
            raise FeatureError("invalid_image", "the portrait cannot be read") from exc
        data = {
            "note": card_note(lang.code, design, from_photo=from_photo),
            "design": design.as_result(),
        }
        return self._reply(data | lang.fields(), CARD_MODEL, ImageBlob(png, "image/png"))
