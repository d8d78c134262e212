"""Reading a feature's inputs by id: the video material and the stored images.

Tasks get only a job id; everything else is re-read here from the job row and media
storage, so a redelivered or re-enqueued task always works on the committed state.
"""

from __future__ import annotations

import uuid
from typing import Any

from refract.errors import FeatureError, NotFound
from refract.gateway.base import Comment, ImageBlob, TranscriptLine, VideoMaterial
from refract.media import load_image
from tasks.runner import FeatureContext


def video_material(ctx: FeatureContext) -> VideoMaterial:
    """The video's material: the inline ``source``, or the parsed YouTube link."""
    source: dict[str, Any] | None = ctx.input.get("source")
    if source:
        return VideoMaterial(
            title=source.get("title") or "",
            description=source.get("description") or "",
            transcript=tuple(
                TranscriptLine(float(line["start"]), str(line["text"]))
                for line in source.get("transcript") or []
            ),
            comments=tuple(
                Comment(
                    text=str(c["text"]),
                    author=c.get("author"),
                    likes=int(c.get("likes") or 0),
                    published_at=c.get("published_at"),
                )
                for c in source.get("comments") or []
            ),
        )
    return VideoMaterial(url=ctx.input.get("url"), video_id=ctx.input.get("video_id"))


def stored_image(ctx: FeatureContext, artifact_id: str | None, *, what: str) -> ImageBlob:
    """The bytes of an artifact the job refers to; a ``FeatureError`` when it is gone."""
    if not artifact_id:
        raise FeatureError(f"no_{what}", f"the job has no {what} image")
    try:
        with ctx.session() as session:
            return load_image(session, ctx.services.store, uuid.UUID(artifact_id))
    except NotFound as exc:
        raise FeatureError(f"{what}_missing", f"the stored {what} image is gone: {exc}") from exc


def youtube_not_ingested(what: str) -> FeatureError:
    """The honest failure for YouTube material this version cannot fetch yet."""
    return FeatureError(
        "youtube_ingestion_unavailable",
        f"fetching the video's {what} from YouTube is not available in this version; "
        "submit the material inline with `source` instead",
    )
