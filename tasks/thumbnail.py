"""``thumbnail``: what the video's thumbnail shows and how well it works."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task

from refract.gateway.base import ModelReply
from refract.jobs.catalog import FEATURES
from tasks.inputs import inline_source, keep_image, source_material, stored_image, youtube_video
from tasks.runner import FeatureContext, run_feature

FEATURE = "thumbnail"


def analyze(ctx: FeatureContext) -> ModelReply:
    """Give the backend the thumbnail image (with the title) and return its analysis."""
    source = inline_source(ctx)
    if source is not None:
        artifact_id = source.get("thumbnail_artifact_id")
        image = stored_image(ctx, artifact_id, what="thumbnail")
        title = source_material(source).title
        origin: dict[str, Any] = {"artifact_id": artifact_id}
    else:
        video = youtube_video(ctx, with_transcript=False)
        fetch = ctx.services.youtube.thumbnail(ctx.input["video_id"])
        image, title = fetch.image, video.title
        artifact_id = keep_image(
            ctx, image, role="thumbnail", width=fetch.width, height=fetch.height
        )
        origin = {
            "artifact_id": artifact_id,
            "size": fetch.size_name,
            "width": fetch.width,
            "height": fetch.height,
        }
    ctx.report(0.3, "thumbnail loaded")
    reply = ctx.backend.analyze_thumbnail(image, title=title, language=ctx.language)
    reply.data["thumbnail"] = origin
    return reply


@shared_task(name=FEATURES[FEATURE].task_name, bind=True)
def thumbnail(self: Task[Any, Any], job_id: str) -> dict[str, Any]:
    """Run the ``thumbnail`` feature of ``job_id``."""
    return run_feature(self, job_id, FEATURE, analyze)
