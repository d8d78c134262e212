"""``comments``: what viewers say and how they feel, from the top comments."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from celery import Task, shared_task

from refract.gateway.base import ModelReply
from refract.jobs.catalog import FEATURES
from tasks.inputs import inline_source, source_material, youtube_video
from tasks.runner import FeatureContext, run_feature

FEATURE = "comments"


def analyze(ctx: FeatureContext) -> ModelReply:
    """Fetch (or read) the comments, give them to the backend as data, return its analysis."""
    source = inline_source(ctx)
    fetched: dict[str, Any] | None = None
    if source is not None:
        video = source_material(source)
    else:
        video = youtube_video(ctx, with_transcript=False)
        page = ctx.services.youtube.comments(ctx.input["video_id"])
        video = replace(video, comments=tuple(page.comments))
        fetched = {
            "fetched": len(page.comments),
            "pages": page.pages,
            "complete": page.complete,
            "quota_units": page.quota_units,
        }
    ctx.report(0.3, f"{len(video.comments)} comments ready")
    ctx.report(0.4, "asking the model")
    reply = ctx.backend.analyze_comments(video, language=ctx.language)
    if fetched is not None:
        reply.data["youtube"] = fetched
    return reply


@shared_task(name=FEATURES[FEATURE].task_name, bind=True)
def comments(self: Task[Any, Any], job_id: str) -> dict[str, Any]:
    """Run the ``comments`` feature of ``job_id``."""
    return run_feature(self, job_id, FEATURE, analyze)
