"""``comments``: what viewers say and how they feel, from the top comments."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task

from refract.catalog import FEATURES
from refract.gateway.base import ModelReply
from tasks.inputs import video_material, youtube_not_ingested
from tasks.runner import FeatureContext, run_feature

FEATURE = "comments"


def analyze(ctx: FeatureContext) -> ModelReply:
    """Give the backend the comments as data and return its analysis."""
    video = video_material(ctx)
    if video.url and not video.comments:
        raise youtube_not_ingested("comments")
    ctx.report(0.2, f"{len(video.comments)} comments ready")
    ctx.report(0.4, "asking the model")
    return ctx.backend.analyze_comments(video, language=ctx.language)


@shared_task(name=FEATURES[FEATURE].task_name, bind=True)
def comments(self: Task, job_id: str) -> dict[str, Any]:
    """Run the ``comments`` feature of ``job_id``."""
    return run_feature(self, job_id, FEATURE, analyze)
