"""``summary``: what the video says — the video itself by URL, or its transcript."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task

from refract.catalog import FEATURES
from refract.errors import FeatureError
from refract.gateway.base import ModelReply
from tasks.inputs import video_material
from tasks.runner import FeatureContext, run_feature

FEATURE = "summary"


def summarize(ctx: FeatureContext) -> ModelReply:
    """Give the backend the video (by URL) or the transcript and return its summary."""
    video = video_material(ctx)
    if not video.url and not video.transcript and not (video.title or video.description):
        raise FeatureError("no_transcript", "the video has no transcript, title or description")
    ctx.report(0.2, "material ready")
    ctx.report(0.4, "asking the model")
    return ctx.backend.summarize_video(video, language=ctx.language)


@shared_task(name=FEATURES[FEATURE].task_name, bind=True)
def summary(self: Task, job_id: str) -> dict[str, Any]:
    """Run the ``summary`` feature of ``job_id``."""
    return run_feature(self, job_id, FEATURE, summarize)
