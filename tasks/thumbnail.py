"""``thumbnail``: what the video's thumbnail shows and how well it works."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task

from refract.catalog import FEATURES
from refract.gateway.base import ModelReply
from tasks.inputs import stored_image, video_material, youtube_not_ingested
from tasks.runner import FeatureContext, run_feature

FEATURE = "thumbnail"


def analyze(ctx: FeatureContext) -> ModelReply:
    """Give the backend the thumbnail image (with the title) and return its analysis."""
    source = ctx.input.get("source")
    if not source:
        raise youtube_not_ingested("thumbnail")
    image = stored_image(ctx, source.get("thumbnail_artifact_id"), what="thumbnail")
    title = video_material(ctx).title
    ctx.report(0.3, "thumbnail loaded")
    return ctx.backend.analyze_thumbnail(image, title=title, language=ctx.language)


@shared_task(name=FEATURES[FEATURE].task_name, bind=True)
def thumbnail(self: Task, job_id: str) -> dict[str, Any]:
    """Run the ``thumbnail`` feature of ``job_id``."""
    return run_feature(self, job_id, FEATURE, analyze)
