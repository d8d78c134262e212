"""The feature catalog: which features each job kind has, how they depend on each other,
which Celery task runs each one and on which queue.

Task names are stable strings (``refract.<queue>.<feature>``) so that routing by name
pattern works and the API can enqueue by name without importing task bodies.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class JobKind(StrEnum):
    """What a job analyses."""

    VIDEO = "video"
    PHOTOCARD = "photocard"


class JobStatus(StrEnum):
    """A job's overall status (see API.md)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    PARTIAL = "partial"
    FAILED = "failed"
    CANCELED = "canceled"


class FeatureStatus(StrEnum):
    """One feature's status (see API.md)."""

    WAITING = "waiting"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    BLOCKED = "blocked"
    SKIPPED = "skipped"
    CANCELED = "canceled"


FINAL_FEATURE_STATUSES = frozenset(
    {
        FeatureStatus.SUCCEEDED,
        FeatureStatus.FAILED,
        FeatureStatus.BLOCKED,
        FeatureStatus.SKIPPED,
        FeatureStatus.CANCELED,
    }
)
FINAL_JOB_STATUSES = frozenset(
    {JobStatus.SUCCEEDED, JobStatus.PARTIAL, JobStatus.FAILED, JobStatus.CANCELED}
)

TEXT_QUEUE = "text"
IMAGE_QUEUE = "image"
MAINTENANCE_QUEUE = "maintenance"
ALL_QUEUES = (TEXT_QUEUE, IMAGE_QUEUE, MAINTENANCE_QUEUE)


@dataclass(frozen=True)
class FeatureSpec:
    """One feature: its kind, its queue and the features whose results it needs."""

    name: str
    kind: JobKind
    queue: str
    needs: tuple[str, ...] = ()

    @property
    def task_name(self) -> str:
        """The Celery task name; routing matches ``refract.<queue>.*``."""
        return f"refract.{self.queue}.{self.name}"


FEATURES: dict[str, FeatureSpec] = {
    spec.name: spec
    for spec in (
        FeatureSpec("summary", JobKind.VIDEO, TEXT_QUEUE),
        FeatureSpec("comments", JobKind.VIDEO, TEXT_QUEUE),
        FeatureSpec("thumbnail", JobKind.VIDEO, IMAGE_QUEUE),
        FeatureSpec("caption", JobKind.PHOTOCARD, IMAGE_QUEUE),
        FeatureSpec("stylize", JobKind.PHOTOCARD, IMAGE_QUEUE),
        FeatureSpec("card", JobKind.PHOTOCARD, IMAGE_QUEUE, needs=("caption", "stylize")),
    )
}

RECONCILE_TASK = f"refract.{MAINTENANCE_QUEUE}.reconcile"
PURGE_TASK = f"refract.{MAINTENANCE_QUEUE}.purge_expired"


def features_of(kind: JobKind) -> list[str]:
    """All features of a kind, in catalog order."""
    return [name for name, spec in FEATURES.items() if spec.kind == kind]


def resolve_features(kind: JobKind, requested: list[str] | None) -> list[str]:
    """Validate a requested subset of features and return it in catalog order.

    Raises ``ValueError`` with a client-facing message when a feature is unknown, belongs
    to the other kind, or needs a feature that was not requested.
    """
    allowed = features_of(kind)
    if not requested:
        return allowed
    chosen = set()
    for name in requested:
        if name not in FEATURES:
            raise ValueError(f"unknown feature {name!r}; {kind} jobs have {', '.join(allowed)}")
        if FEATURES[name].kind != kind:
            raise ValueError(f"feature {name!r} is not a {kind} feature")
        chosen.add(name)
    for name in chosen:
        missing = [dep for dep in FEATURES[name].needs if dep not in chosen]
        if missing:
            raise ValueError(f"feature {name!r} needs {', '.join(missing)}")
    return [name for name in allowed if name in chosen]
