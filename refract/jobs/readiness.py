"""When a feature may run: the rules the task runner and the reconciler share.

A feature is *ready* once every feature it needs is final (``card`` after ``caption`` and
``stylize``). A ``running`` feature is *lost* once its heartbeat has stopped for longer
than ``heartbeat_timeout_s``: its worker died, so another copy of the task may claim it,
and the reconciler sends one. A feature whose heartbeat is alive is never run twice,
however long it takes.
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


def heartbeat_stopped(run: FeatureRun, now: datetime, timeout: timedelta) -> bool:
    """Whether ``run`` is ``running`` but its heartbeat (or, before the first beat, its
    claim) is older than ``timeout``."""
    if run.status != FeatureStatus.RUNNING.value:
        return False
    last = run.heartbeat_at or run.started_at
    return last is None or now - last > timeout


def inputs_finished_at(feature: str, runs: Mapping[str, FeatureRun]) -> datetime | None:
    """When the last input ``feature`` needs became final (``None`` if one is not)."""
    times = [runs[need].finished_at for need in FEATURES[feature].needs if need in runs]
    if any(when is None for when in times):
        return None
    return max((when for when in times if when is not None), default=None)
