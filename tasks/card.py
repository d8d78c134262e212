"""``card``: the chord callback that makes the finished photo card.

It runs once ``caption`` and ``stylize`` are final. When ``stylize`` found nobody in the
photo (``no_face_detected``), the card is made from the photo itself, so the visitor still
leaves with a card (``portrait: "photo"`` in its result). If an input failed otherwise,
the card is ``skipped`` (never left waiting), naming the input that failed.
"""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task
from sqlalchemy import select

from refract.core.errors import FeatureError
from refract.core.models import FeatureRun
from refract.gateway.base import ModelReply
from refract.jobs.catalog import FEATURES, FeatureStatus
from tasks.inputs import stored_image
from tasks.runner import FeatureContext, run_feature

FEATURE = "card"
# stylize's code for a photo with nobody in it: the card is then made from the photo.
NOBODY_CODE = "no_face_detected"


def compose(ctx: FeatureContext) -> ModelReply:
    """Combine the stylized portrait, the caption and the visitor's prompt into a card."""
    with ctx.session() as session:
        runs = {
            run.feature: run
            for run in session.scalars(
                select(FeatureRun).where(
                    FeatureRun.job_id == ctx.job_id,
                    FeatureRun.feature.in_(FEATURES[FEATURE].needs),
                )
            )
        }
    stylize = runs.get("stylize")
    from_photo = (
        stylize is not None
        and stylize.status == FeatureStatus.FAILED.value
        and stylize.error_code == NOBODY_CODE
    )
    failed = [
        f"{name} {runs[name].status}" if name in runs else f"{name} missing"
        for name in FEATURES[FEATURE].needs
        if name not in runs or runs[name].status != FeatureStatus.SUCCEEDED.value
        if not (name == "stylize" and from_photo)
    ]
    if failed:
        raise FeatureError(
            "input_unavailable",
            f"the card needs its inputs: {', '.join(failed)}",
            status=FeatureStatus.SKIPPED.value,
        )
    caption = (runs["caption"].result or {}).get("caption", "")
    if from_photo:
        portrait = stored_image(ctx, ctx.input.get("photo_artifact_id"), what="photo")
    else:
        artifact_id = (runs["stylize"].result or {}).get("artifact_id")
        portrait = stored_image(ctx, artifact_id, what="portrait")
    ctx.report(0.3, "composing the card")
    reply = ctx.backend.compose_card(
        portrait,
        caption=caption,
        prompt=ctx.input.get("prompt") or "",
        language=ctx.language,
        from_photo=from_photo,
    )
    reply.data["portrait"] = "photo" if from_photo else "stylize"
    return reply


@shared_task(name=FEATURES[FEATURE].task_name, bind=True)
def card(self: Task[Any, Any], job_id: str, *_header_results: Any) -> dict[str, Any]:
    """Run the ``card`` feature of ``job_id`` (the chord's callback)."""
    return run_feature(self, job_id, FEATURE, compose)
