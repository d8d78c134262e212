"""The feature catalog: kinds, subsets, dependencies, task names."""

from __future__ import annotations

import pytest

from refract.jobs.catalog import FEATURES, JobKind, features_of, resolve_features


def test_every_kind_has_its_features_in_order() -> None:
    assert features_of(JobKind.VIDEO) == ["summary", "comments", "thumbnail"]
    assert features_of(JobKind.PHOTOCARD) == ["caption", "stylize", "card"]


def test_task_names_are_stable_and_routable_by_queue() -> None:
    assert FEATURES["summary"].task_name == "refract.text.summary"
    assert FEATURES["card"].task_name == "refract.image.card"
    assert {spec.task_name.split(".")[1] for spec in FEATURES.values()} == {"text", "image"}


def test_subsets_come_back_in_catalog_order() -> None:
    assert resolve_features(JobKind.VIDEO, ["thumbnail", "summary"]) == ["summary", "thumbnail"]
    assert resolve_features(JobKind.VIDEO, None) == ["summary", "comments", "thumbnail"]


@pytest.mark.parametrize(
    ("kind", "requested", "message"),
    [
        (JobKind.VIDEO, ["summary", "nope"], "unknown feature 'nope'"),
        (JobKind.VIDEO, ["caption"], "not a video feature"),
        (JobKind.PHOTOCARD, ["card"], "needs caption, stylize"),
        (JobKind.PHOTOCARD, ["caption", "card"], "needs stylize"),
    ],
)
def test_bad_subsets_are_refused(kind: JobKind, requested: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        resolve_features(kind, requested)
