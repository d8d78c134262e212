"""When a feature may run: the rules the task runner and the reconciler share.

A feature is *ready* once every feature it needs is final (``card`` after ``caption`` and
``stylize``). A ``running`` claim is *stale* once its run started longer ago than
``claim_stale_after_s``: its worker is taken to be lost, so another copy of the task may
claim the feature, and the reconciler sends one.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from refract.core.models import FeatureRun
from refract.jobs.catalog import FEATURES, FINAL_FEATURE_STATUSES, FeatureStatus


def inputs_final(feature: str, runs: Mapping[str, FeatureRun]) -> bool:
    """Whether every feature ``feature`` needs (and the job has) is final."""
    return all(
        runs[need].status in FINAL_FEATURE_STATUSES
        for need in FEATURES[feature].needs
        if need in runs
    )


def inputs_queued(feature: str, runs: Mapping[str, FeatureRun]) -> bool:
    """Whether a feature ``feature`` needs is still ``queued`` (not yet picked up)."""
    return any(
        runs[need].status == FeatureStatus.QUEUED.value
        for need in FEATURES[feature].needs
        if need in runs
    )


def claim_is_stale(run: FeatureRun, now: datetime, stale_after: timedelta) -> bool:
    """Whether ``run`` is ``running`` under a claim older than ``stale_after``."""
    return (
        run.status == FeatureStatus.RUNNING.value
        and run.started_at is not None
        and now - run.started_at > stale_after
    )
