"""Job status and progress from feature statuses, and the canvas a job is sent as."""

from __future__ import annotations

import uuid

import pytest
from celery import Celery
from celery.canvas import Signature, chord, group

from refract.core.models import FeatureRun
from refract.jobs.dispatch import build_canvas
from refract.jobs.state import aggregate


def runs(*statuses: str, progress: float = 0.0) -> list[FeatureRun]:
    return [
        FeatureRun(feature=f"f{i}", status=s, progress=progress) for i, s in enumerate(statuses)
    ]


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        (("queued", "queued", "waiting"), "queued"),
        (("running", "queued", "waiting"), "running"),
        (("succeeded", "queued", "queued"), "running"),
        (("succeeded", "succeeded", "succeeded"), "succeeded"),
        (("succeeded", "failed", "skipped"), "partial"),
        (("succeeded", "blocked"), "partial"),
        (("failed", "blocked", "skipped"), "failed"),
        (("canceled", "canceled"), "canceled"),
        (("succeeded", "canceled"), "partial"),
    ],
)
def test_job_status_follows_feature_statuses(statuses: tuple[str, ...], expected: str) -> None:
    status, _ = aggregate(runs(*statuses))
    assert status.value == expected


def test_progress_counts_final_features_as_done() -> None:
    items = runs("succeeded", "running", "queued")
    items[1].progress = 0.5
    _, progress = aggregate(items)
    assert progress == pytest.approx((1.0 + 0.5 + 0.0) / 3)


@pytest.fixture
def app() -> Celery:
    return Celery("canvas-test", set_as_current=False)


def test_video_features_are_a_group(app: Celery) -> None:
    canvas = build_canvas(app, uuid.uuid4(), ["summary", "comments", "thumbnail"])
    assert isinstance(canvas, group)
    assert [t.task for t in canvas.tasks] == [
        "refract.text.summary",
        "refract.text.comments",
        "refract.image.thumbnail",
    ]


def test_photocard_is_a_chord_with_card_as_callback(app: Celery) -> None:
    job_id = uuid.uuid4()
    canvas = build_canvas(app, job_id, ["caption", "stylize", "card"])
    assert isinstance(canvas, chord)
    assert [t.task for t in canvas.tasks] == ["refract.image.caption", "refract.image.stylize"]
    body = canvas.body
    assert isinstance(body, Signature) and body.task == "refract.image.card"
    assert body.immutable and body.args == (str(job_id),)


def test_photocard_subset_without_card_is_a_group(app: Celery) -> None:
    canvas = build_canvas(app, uuid.uuid4(), ["caption"])
    assert isinstance(canvas, group)


def test_card_alone_when_inputs_are_done(app: Celery) -> None:
    canvas = build_canvas(app, uuid.uuid4(), ["card"])
    assert isinstance(canvas, group)
    assert [t.task for t in canvas.tasks] == ["refract.image.card"]
