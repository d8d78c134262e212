"""The metrics Refract records, and the one-line functions its call sites use.

Every name starts with ``refract_``. Counters and histograms are recorded where things
happen (the API for submissions, the worker for features, model calls, tokens and
limiter waits); gauges that describe the whole system (jobs per status, queue depth) are
read at scrape time instead (:mod:`refract.observability.collect`), so they are right
whichever process answers.

The metric objects are made on first use, not at import: prometheus_client decides how
a value is kept (in this process, or in a file under ``PROMETHEUS_MULTIPROC_DIR`` that
every process's scrape sums) when the metric is made, and a launcher may import this
module before it has set the directory for the processes it starts. Recording never
raises into the caller: a metric is not worth a failed request or feature.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog
from prometheus_client import Counter, Histogram, values

from refract.observability.multiproc import MULTIPROC_ENV

if TYPE_CHECKING:
    from refract.core.models import Job

log = structlog.get_logger(__name__)

# How a model call ended (label ``outcome`` of refract_model_calls_total).
OUTCOMES = ("ok", "429", "5xx", "error", "timeout")
DIRECTIONS = ("input", "output")

# Features take from well under a second (local text analysis) to minutes (image models).
FEATURE_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600)
# Most acquisitions pass at once; a saturated window makes calls wait up to a minute.
WAIT_BUCKETS = (0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


@dataclass(frozen=True)
class Metrics:
    """The metric objects of this process."""

    jobs_submitted: Counter
    feature_duration: Histogram
    model_calls: Counter
    model_tokens: Counter
    limiter_wait: Histogram


_made: Metrics | None = None
_lock = threading.Lock()


def ensure_created() -> Metrics:
    """This process's metric objects, made (and registered) on the first call."""
    global _made
    if _made is None:
        with _lock:
            if _made is None:
                _use_multiprocess_values()
                _made = _create()
    return _made


def _use_multiprocess_values() -> None:
    # prometheus_client picks file-backed values once, when it is first imported; a
    # process that imported it before its launcher set the directory would keep values
    # no other process's scrape sees. Picking again before our metrics exist fixes that.
    if os.environ.get(MULTIPROC_ENV) and not getattr(values.ValueClass, "_multiprocess", False):
        values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]


def _create() -> Metrics:
    return Metrics(
        jobs_submitted=Counter(
            "refract_jobs_submitted", "Jobs created through the API, by kind.", ["kind"]
        ),
        feature_duration=Histogram(
            "refract_feature_duration_seconds",
            "Time from a feature's start to its stored outcome, by feature, backend and "
            "final status.",
            ["feature", "backend", "status"],
            buckets=FEATURE_BUCKETS,
        ),
        model_calls=Counter(
            "refract_model_calls",
            "Model calls by model and outcome (ok, 429, 5xx, error, timeout); every retry "
            "is a call.",
            ["model", "outcome"],
        ),
        model_tokens=Counter(
            "refract_model_tokens",
            "Tokens the model reported, by model and direction (input, output).",
            ["model", "direction"],
        ),
        limiter_wait=Histogram(
            "refract_rate_limiter_wait_seconds",
            "Time a model call waited for the shared requests-per-minute limit, by model.",
            ["model"],
            buckets=WAIT_BUCKETS,
        ),
    )


def job_submitted(kind: str) -> None:
    """Count a job the API created (not an idempotent replay)."""
    try:
        ensure_created().jobs_submitted.labels(kind=kind).inc()
    except Exception as exc:  # a full disk under the metrics dir must not fail a request
        _lost("job_submitted", exc)


def feature_finished(feature: str, backend: str, status: str, seconds: float) -> None:
    """Observe how long ``feature`` took to reach its final ``status`` on ``backend``."""
    try:
        histogram = ensure_created().feature_duration
        histogram.labels(feature=feature, backend=backend, status=status).observe(max(0.0, seconds))
    except Exception as exc:
        _lost("feature_finished", exc)


def run_finished(job: Job, feature: str, backend: str) -> None:
    """Observe ``feature`` of ``job`` as stored: its final status, and its duration from
    the run's ``started_at`` to its ``finished_at`` (a run without both is not timed)."""
    run = next((r for r in job.features if r.feature == feature), None)
    if run is None or run.started_at is None or run.finished_at is None:
        return
    seconds = (run.finished_at - run.started_at).total_seconds()
    feature_finished(feature, backend, run.status, seconds)


def model_call(model: str, outcome: str) -> None:
    """Count one call to ``model`` that ended with ``outcome`` (one of :data:`OUTCOMES`)."""
    try:
        ensure_created().model_calls.labels(model=model, outcome=outcome).inc()
    except Exception as exc:
        _lost("model_call", exc)


def tokens(model: str, direction: str, n: int | None) -> None:
    """Add ``n`` tokens of ``direction`` (input or output) for ``model``; None adds none."""
    if not n:
        return
    try:
        ensure_created().model_tokens.labels(model=model, direction=direction).inc(n)
    except Exception as exc:
        _lost("tokens", exc)


def limiter_wait(model: str, seconds: float) -> None:
    """Observe how long a call to ``model`` waited for the shared rate limiter."""
    try:
        ensure_created().limiter_wait.labels(model=model).observe(max(0.0, seconds))
    except Exception as exc:
        _lost("limiter_wait", exc)


def _lost(metric: str, exc: Exception) -> None:
    log.warning("metric_not_recorded", metric=metric, error=f"{type(exc).__name__}: {exc}")
