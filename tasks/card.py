"""``card``: the chord callback that makes the finished photo card.

It runs once ``caption`` and ``stylize`` are final. If either did not succeed, the card
is ``skipped`` (never left waiting), naming the input that failed.
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
    failed = [
        f"{name} {runs[name].status}" if name in runs else f"{name} missing"
        for name in FEATURES[FEATURE].needs
        if name not in runs or runs[name].status != FeatureStatus.SUCCEEDED.value
    ]
    if failed:
        raise FeatureError(
            "input_unavailable",
            f"the card needs its inputs: {', '.join(failed)}",
            status=FeatureStatus.SKIPPED.value,
        )
    caption = (runs["caption"].result or {}).get("caption", "")
    portrait = stored_image(ctx, (runs["stylize"].result or {}).get("artifact_id"), what="portrait")
    ctx.report(0.3, "composing the card")
    return ctx.backend.compose_card(
        portrait, caption=caption, prompt=ctx.input.get("prompt") or "", language=ctx.language
    )


@shared_task(name=FEATURES[FEATURE].task_name, bind=True)
def card(self: Task[Any, Any], job_id: str, *_header_results: Any) -> dict[str, Any]:
    """Run the ``card`` feature of ``job_id`` (the chord's callback)."""
    return run_feature(self, job_id, FEATURE, compose)
