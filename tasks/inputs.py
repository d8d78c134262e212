"""Reading a feature's inputs by id: the video material and the stored images.

Tasks get only a job id; everything else is re-read here from the job row, media storage
or YouTube (through the cached :class:`~refract.youtube.YouTubeMaterial`), so a
redelivered or re-enqueued task always works on the committed state.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

from sqlalchemy.exc import IntegrityError

from refract.core.errors import FeatureError, NotFound
from refract.core.material import Comment, ImageBlob, TranscriptLine, VideoMaterial
from refract.imaging.storage import read_image, store_image
from refract.youtube.client import PERMANENT_CODES, VideoMetadata
from refract.youtube.links import VideoRef
from tasks.runner import FeatureContext


def inline_source(ctx: FeatureContext) -> dict[str, Any] | None:
    """The job's inline ``source`` material, if it was submitted with one."""
    source = ctx.input.get("source")
    return dict(source) if source else None


def source_material(source: dict[str, Any]) -> VideoMaterial:
    """The video material of an inline ``source``."""
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


def youtube_video(ctx: FeatureContext, *, with_transcript: bool) -> VideoMaterial:
    """A ``url`` job's video: its link, and what YouTube says about it.

    A video that is gone or private fails the feature with YouTube's code. When only the
    metadata cannot be had (no key and oEmbed down, quota), the feature goes on with the
    link alone: Gemini fetches the video itself.
    """
    video, _meta = youtube_video_and_metadata(ctx, with_transcript=with_transcript)
    return video


def youtube_video_and_metadata(
    ctx: FeatureContext, *, with_transcript: bool
) -> tuple[VideoMaterial, VideoMetadata | None]:
    """:func:`youtube_video`, plus the metadata itself when YouTube gave it."""
    ref = VideoRef(ctx.input["video_id"])
    youtube = ctx.services.youtube
    video = VideoMaterial(url=ref.canonical_url, video_id=ref.video_id)
    meta: VideoMetadata | None = None
    try:
        meta = youtube.metadata(ref.video_id)
        video = replace(
            video, title=meta.title, description=meta.description, duration_s=meta.duration_s
        )
    except FeatureError as exc:
        if exc.code in PERMANENT_CODES:
            raise
        ctx.log.warning("youtube_metadata_unavailable", code=exc.code)
    if with_transcript:
        lines = youtube.transcript(ref.video_id, languages=_languages(ctx))
        video = replace(video, transcript=tuple(lines or ()))
    return video, meta


def metadata_summary(meta: VideoMetadata) -> dict[str, Any]:
    """The video's facts as shown beside its summary."""
    return {
        "title": meta.title,
        "channel": meta.channel,
        "duration_s": meta.duration_s,
        "published_at": meta.published_at,
        "view_count": meta.view_count,
        "like_count": meta.like_count,
        "comment_count": meta.comment_count,
        "source": meta.source,
    }


def youtube_transcript(ctx: FeatureContext, video: VideoMaterial) -> VideoMaterial | None:
    """``video`` with its transcript and without its link, when YouTube has captions."""
    if video.video_id is None:
        return None
    lines = ctx.services.youtube.transcript(video.video_id, languages=_languages(ctx))
    return replace(video, url=None, transcript=tuple(lines)) if lines else None


def _languages(ctx: FeatureContext) -> tuple[str, ...]:
    return tuple(dict.fromkeys([ctx.language, "en"]))


def stored_image(ctx: FeatureContext, artifact_id: str | None, *, what: str) -> ImageBlob:
    """The bytes of an artifact the job refers to; a ``FeatureError`` when it is gone."""
    if not artifact_id:
        raise FeatureError(f"no_{what}", f"the job has no {what} image")
    try:
        with ctx.session() as session:
            return read_image(session, ctx.services.store, uuid.UUID(artifact_id))
    except NotFound as exc:
        raise FeatureError(f"{what}_missing", f"the stored {what} image is gone: {exc}") from exc


def keep_image(ctx: FeatureContext, image: ImageBlob, *, role: str, width: int, height: int) -> str:
    """Store an image fetched for the job as an artifact; returns its id.

    If its row is not committed, its file is removed: the job was deleted meanwhile (the
    row's foreign key refuses it; a ``FeatureError`` nobody will see, as the outcome has
    no job left to land in) or the database failed (the work is retried).
    """
    written: str | None = None
    try:
        with ctx.session() as session:
            artifact = store_image(
                session,
                ctx.services.store,
                job_id=ctx.job_id,
                role=role,
                data=image.data,
                content_type=image.mime_type,
                width=width,
                height=height,
            )
            written = artifact.storage_key
            artifact_id = str(artifact.id)
    except BaseException as exc:
        if written is not None:
            ctx.services.store.delete(written)
        if isinstance(exc, IntegrityError):
            raise FeatureError("job_deleted", "the job was deleted while it ran") from exc
        raise
    return artifact_id
