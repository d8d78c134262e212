"""``GET /metrics``: Prometheus metrics for admins (a bearer admin key, or the dashboard's
session), in the classic text format.

Counters and histograms come from every process of the stack through prometheus_client's
multiprocess files (:mod:`refract.observability.exposition`); the system's state (jobs
per status, features in flight, queue depth) is read as the scrape happens
(:mod:`refract.observability.collect`). ``deploy/prometheus.yml`` is a scrape config.
"""

from __future__ import annotations

from flask import Blueprint, Response
from spectree import Response as Responses

from api.db import get_db
from api.openapi.spec import documented
from api.principal import require_admin
from api.schemas import Problem
from api.services import services
from refract.jobs.catalog import ALL_QUEUES, FEATURES, FeatureStatus, JobStatus
from refract.jobs.queues import broker_client, queue_depths
from refract.observability.collect import (
    DatabaseState,
    StateCollector,
    features_by_status,
    jobs_by_status,
)
from refract.observability.exposition import CONTENT_TYPE, render

bp = Blueprint("metrics", __name__)

# The feature statuses that are not final: what "in flight" counts.
IN_FLIGHT = (FeatureStatus.WAITING.value, FeatureStatus.QUEUED.value, FeatureStatus.RUNNING.value)

_documented = documented(
    operation_id="getMetrics",
    tags=["operations"],
    resp=Responses(HTTP_200=None, HTTP_403=(Problem, "The key is not an admin key.")),
    extra={
        "description": "Prometheus metrics (text format 0.0.4) for the whole stack: jobs "
        "submitted by kind, feature durations by feature, backend and status, model calls "
        "by model and outcome, tokens by model and direction, rate-limiter waits, and, "
        "read at scrape time, jobs per status, features in flight and queue depth. Needs "
        "an admin key.",
        "responses": {
            "200": {
                "description": "The metrics.",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        },
    },
)


@bp.get("/metrics")
@_documented
def metrics() -> Response:
    """Every metric of the stack, for a Prometheus scrape."""
    require_admin("/metrics")
    # A client per scrape, closed at once (scrapes are seconds apart); None: the broker
    # is not Redis, whose queues cannot be read.
    broker = broker_client(services().settings.effective_broker_url)
    try:
        state = StateCollector(
            database=_database_state,
            broker=(lambda: queue_depths(broker, ALL_QUEUES)) if broker is not None else None,
            job_statuses=[status.value for status in JobStatus],
            features=list(FEATURES),
            flight_statuses=IN_FLIGHT,
            queue_names=ALL_QUEUES,
        )
        body = render([state])
    finally:
        if broker is not None:
            broker.close()
    response = Response(body, content_type=CONTENT_TYPE)
    response.headers["Cache-Control"] = "no-store"
    return response


def _database_state() -> DatabaseState:
    session = get_db()
    try:
        return jobs_by_status(session), features_by_status(session, IN_FLIGHT)
    finally:
        # Read-only: end the transaction now rather than hold it until teardown.
        session.rollback()
