"""Gauges read at scrape time: jobs per status, features in flight, queue depth.

These describe the whole system, not one process, so they are read from where the
truth is when Prometheus asks (one GROUP BY on Postgres for jobs, one for the features
not yet final; one pipelined LLEN round trip to the broker), never kept in a process.
A source that cannot be read is left out of that scrape and reported as
``refract_scrape_source_up{source=...} 0``: the rest of the scrape still answers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

import structlog
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from refract.core.models import FeatureRun, Job

log = structlog.get_logger(__name__)


def jobs_by_status(session: Session) -> dict[str, int]:
    """How many jobs are in each status (statuses with none are absent)."""
    rows = session.execute(select(Job.status, func.count()).group_by(Job.status))
    return {status: int(count) for status, count in rows}


def features_by_status(session: Session, statuses: Sequence[str]) -> dict[tuple[str, str], int]:
    """How many feature runs are in each of ``statuses`` (the ones not final), by
    (feature, status); the index on (status, queued_at) keeps it cheap."""
    rows = session.execute(
        select(FeatureRun.feature, FeatureRun.status, func.count())
        .where(FeatureRun.status.in_(list(statuses)))
        .group_by(FeatureRun.feature, FeatureRun.status)
    )
    return {(feature, status): int(count) for feature, status, count in rows}


# What the database says: jobs by status, and features not yet final by (feature, status).
DatabaseState = tuple[dict[str, int], dict[tuple[str, str], int]]
T = TypeVar("T")


@dataclass
class StateCollector(Collector):
    """The scrape-time gauges, from two readers called once per scrape.

    ``job_statuses``, ``features``, ``flight_statuses`` and ``queue_names`` name every
    label value, so a status with no jobs is a 0, not a series that comes and goes.
    """

    database: Callable[[], DatabaseState]
    # None: the broker is not one whose queues can be read (only Redis's can).
    broker: Callable[[], dict[str, int]] | None
    job_statuses: Sequence[str]
    features: Sequence[str]
    flight_statuses: Sequence[str]
    queue_names: Sequence[str]

    def collect(self) -> Iterator[Metric]:
        """Read each source and yield its gauges, then whether each source answered."""
        up = GaugeMetricFamily(
            "refract_scrape_source_up",
            "Whether a scrape-time source (database, broker) could be read for this scrape.",
            labels=["source"],
        )
        state = _read("database", self.database, up)
        if state is not None:
            jobs, flight = state
            family = GaugeMetricFamily(
                "refract_jobs", "Jobs in each status, from Postgres.", labels=["status"]
            )
            for status in _ordered(self.job_statuses, jobs):
                family.add_metric([status], jobs.get(status, 0))
            yield family
            family = GaugeMetricFamily(
                "refract_features_in_flight",
                "Features not yet final (waiting, queued, running), by feature and status.",
                labels=["feature", "status"],
            )
            for feature in self.features:
                for status in self.flight_statuses:
                    family.add_metric([feature, status], flight.get((feature, status), 0))
            yield family
        depths = _read("broker", self.broker, up) if self.broker is not None else None
        if depths is not None:
            family = GaugeMetricFamily(
                "refract_queue_depth",
                "Messages waiting in each Celery queue for a worker to take them.",
                labels=["queue"],
            )
            for queue in _ordered(self.queue_names, depths):
                family.add_metric([queue], depths.get(queue, 0))
            yield family
        yield up


def _read(source: str, reader: Callable[[], T], up: GaugeMetricFamily) -> T | None:
    try:
        value = reader()
    except Exception as exc:  # a scrape must answer even with a dependency down
        log.warning("metrics_source_unreadable", source=source, error=type(exc).__name__)
        up.add_metric([source], 0)
        return None
    up.add_metric([source], 1)
    return value


def _ordered(known: Sequence[str], found: dict[str, int]) -> list[str]:
    """The known label values, then any the source had that were not known."""
    return [*known, *sorted(set(found) - set(known))]
