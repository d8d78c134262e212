"""``caption``: a caption and description of the visitor's photo."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task

from refract.gateway.base import ModelReply
from refract.jobs.catalog import FEATURES
from tasks.inputs import stored_image
from tasks.runner import FeatureContext, run_feature

FEATURE = "caption"


def describe(ctx: FeatureContext) -> ModelReply:
    """Give the backend the photo and return its caption."""
    photo = stored_image(ctx, ctx.input.get("photo_artifact_id"), what="photo")
    ctx.report(0.3, "photo loaded")
    return ctx.backend.caption_photo(photo, language=ctx.language)


@shared_task(name=FEATURES[FEATURE].task_name, bind=True)
def caption(self: Task[Any, Any], job_id: str) -> dict[str, Any]:
    """Run the ``caption`` feature of ``job_id``."""
    return run_feature(self, job_id, FEATURE, describe)
