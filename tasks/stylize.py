"""``stylize``: the largest face in the photo, restyled as a 3D character."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task

from refract.core.errors import FeatureError
from refract.gateway.base import ModelReply
from refract.imaging.faces import crop_largest_face
from refract.jobs.catalog import FEATURES
from tasks.inputs import stored_image
from tasks.runner import FeatureContext, run_feature

FEATURE = "stylize"


def restyle(ctx: FeatureContext) -> ModelReply:
    """Crop the largest face and have the backend restyle it; fails without a face."""
    photo = stored_image(ctx, ctx.input.get("photo_artifact_id"), what="photo")
    ctx.report(0.2, "finding the face")
    face = crop_largest_face(photo.data)
    if face is None:
        raise FeatureError("no_face_detected", "no face was found in the photo")
    ctx.report(0.4, "restyling the face")
    return ctx.backend.stylize_face(face)


@shared_task(name=FEATURES[FEATURE].task_name, bind=True)
def stylize(self: Task[Any, Any], job_id: str) -> dict[str, Any]:
    """Run the ``stylize`` feature of ``job_id``."""
    return run_feature(self, job_id, FEATURE, restyle)
