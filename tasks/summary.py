"""``summary``: what the video says — the video itself by URL, or its transcript."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task

from refract.core.errors import FeatureError
from refract.gateway.base import ModelReply
from refract.jobs.catalog import FEATURES
from tasks.inputs import (
    inline_source,
    metadata_summary,
    source_material,
    youtube_transcript,
    youtube_video_and_metadata,
)
from tasks.runner import FeatureContext, run_feature

FEATURE = "summary"


def summarize(ctx: FeatureContext) -> ModelReply:
    """Give the backend the video (by URL) or the transcript and return its summary.

    Gemini watches a linked video itself; the local backend needs the transcript. If
    Gemini refuses the video part (some videos cannot be fetched), the transcript is
    tried instead when YouTube has one.
    """
    source = inline_source(ctx)
    meta = None
    if source is not None:
        video = source_material(source)
        if not video.transcript and not (video.title or video.description):
            raise FeatureError("no_transcript", "the video has no transcript, title or description")
    else:
        video, meta = youtube_video_and_metadata(ctx, with_transcript=ctx.backend.name == "local")
    ctx.report(0.3, "material ready")
    ctx.report(0.4, "asking the model")
    try:
        reply: ModelReply = ctx.backend.summarize_video(video, language=ctx.language)
    except FeatureError as exc:
        if exc.code != "model_request_rejected" or not video.url:
            raise
        fallback = youtube_transcript(ctx, video)
        if fallback is None:
            raise
        ctx.log.warning("summary_video_refused_using_transcript", error=exc.message)
        ctx.report(0.6, "video refused; summarizing the transcript")
        reply = ctx.backend.summarize_video(fallback, language=ctx.language)
    if meta is not None:
        reply.data["video"] = metadata_summary(meta)
    return reply


@shared_task(name=FEATURES[FEATURE].task_name, bind=True)
def summary(self: Task[Any, Any], job_id: str) -> dict[str, Any]:
    """Run the ``summary`` feature of ``job_id``."""
    return run_feature(self, job_id, FEATURE, summarize)
