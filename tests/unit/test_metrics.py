"""The metrics machinery: the shared directory, sums across real processes, the fallback
to one process's registry, and what the runner and the limiter record."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import httpx
import pytest
import redis
from prometheus_client import REGISTRY

from refract.core.models import Job
from refract.gateway.limiter import Quota, RedisRateLimiter
from refract.observability import metrics
from refract.observability.exposition import parse_bind, render, serve
from refract.observability.multiproc import (
    MULTIPROC_ENV,
    ensure_multiprocess_dir,
    mark_process_dead,
    prepare_directory,
)
from tests.support.metrics import parse, value
from tests.support.services import free_port

ROOT = Path(__file__).resolve().parents[2]

# A process that records one model call (and, forked, another from its child).
RECORDER = textwrap.dedent(
    """
    import os, sys
    import prometheus_client  # imported before the directory is known: must not matter
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = sys.argv[1]
    from refract.observability import metrics
    metrics.model_call("m-test", "ok")
    if sys.argv[2] == "fork":
        pid = os.fork()
        if pid == 0:
            metrics.model_call("m-test", "429")
            os._exit(0)
        os.waitpid(pid, 0)
    """
)


def record_in_a_process(directory: Path, fork: bool) -> None:
    env = {k: v for k, v in os.environ.items() if k != MULTIPROC_ENV}
    subprocess.run(
        [sys.executable, "-c", RECORDER, str(directory), "fork" if fork else "plain"],
        env=env,
        cwd=ROOT,
        check=True,
        timeout=60,
    )


def test_prepare_directory_empties_only_metrics_files(tmp_path: Path) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / "counter_123.db").write_bytes(b"old")
    (directory / "notes.txt").write_text("keep")
    prepared = prepare_directory(directory)
    assert prepared.is_absolute()
    assert sorted(p.name for p in prepared.iterdir()) == ["notes.txt"]
    assert prepare_directory(tmp_path / "new" / "dir").is_dir()


def test_ensure_uses_the_configured_directory_or_makes_a_private_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path / "configured"))
    assert ensure_multiprocess_dir() == tmp_path / "configured"
    assert (tmp_path / "configured").is_dir()

    monkeypatch.delenv(MULTIPROC_ENV)
    made = ensure_multiprocess_dir()
    try:
        assert made.is_dir() and made.name.startswith("refract-metrics-")
        assert os.environ[MULTIPROC_ENV] == str(made)
    finally:
        made.rmdir()


def test_counters_of_every_process_and_forked_child_are_summed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # This process keeps its own registry (its metrics exist before the variable is set);
    # the rendering reads the files the other processes wrote.
    metrics.ensure_created()
    directory = prepare_directory(tmp_path / "metrics")
    record_in_a_process(directory, fork=False)
    record_in_a_process(directory, fork=True)
    assert len(list(directory.glob("counter_*.db"))) == 3  # one per process, child included

    monkeypatch.setenv(MULTIPROC_ENV, str(directory))
    samples = parse(render().decode())
    assert value(samples, "refract_model_calls_total", model="m-test", outcome="ok") == 2
    assert value(samples, "refract_model_calls_total", model="m-test", outcome="429") == 1
    # A dead process's counters stay: counters never go back.
    mark_process_dead(12345)
    again = parse(render().decode())
    assert value(again, "refract_model_calls_total", model="m-test", outcome="ok") == 2


def test_without_a_directory_this_process_registry_is_served(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    mark_process_dead(os.getpid())  # nothing to do, and no error
    model = f"m-{uuid.uuid4().hex[:8]}"
    metrics.model_call(model, "ok")
    metrics.tokens(model, "input", 7)
    metrics.tokens(model, "output", None)  # unknown usage adds nothing
    samples = parse(render().decode())
    assert value(samples, "refract_model_calls_total", model=model, outcome="ok") == 1
    assert value(samples, "refract_model_tokens_total", model=model, direction="input") == 7
    assert (
        "refract_model_tokens_total",
        frozenset({("model", model), ("direction", "output")}),
    ) not in samples


def test_a_finished_run_is_timed_from_its_stored_start(monkeypatch: pytest.MonkeyPatch) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    run = SimpleNamespace(
        feature="caption",
        status="succeeded",
        started_at=start,
        finished_at=start + timedelta(seconds=3),
    )
    unstarted = SimpleNamespace(
        feature="card", status="skipped", started_at=None, finished_at=start
    )
    job = cast(Job, SimpleNamespace(features=[run, unstarted]))
    labels = {"feature": "caption", "backend": "unit", "status": "succeeded"}

    def observed(name: str, **extra: str) -> float:
        return REGISTRY.get_sample_value(name, {**labels, **extra}) or 0.0

    count, total = (
        observed("refract_feature_duration_seconds_count"),
        observed("refract_feature_duration_seconds_sum"),
    )
    metrics.run_finished(job, "caption", "unit")
    metrics.run_finished(job, "card", "unit")  # never started: not timed
    assert observed("refract_feature_duration_seconds_count") == count + 1
    assert observed("refract_feature_duration_seconds_sum") == total + 3
    skipped = REGISTRY.get_sample_value(
        "refract_feature_duration_seconds_count",
        {"feature": "card", "backend": "unit", "status": "skipped"},
    )
    assert skipped is None


def test_a_broken_metric_never_reaches_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> Any:
        raise OSError("no space left on device")

    monkeypatch.setattr(metrics, "ensure_created", broken)
    metrics.job_submitted("video")
    metrics.model_call("m", "ok")
    metrics.tokens("m", "input", 1)
    metrics.limiter_wait("m", 1.0)
    metrics.feature_finished("summary", "local", "succeeded", 1.0)


class FakeClock:
    """Wall time the test moves; ``sleep`` advances it."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_the_limiter_observes_how_long_each_call_waited(redis_url: str) -> None:
    model = f"m-{uuid.uuid4().hex[:8]}"
    clock = FakeClock()
    with redis.Redis.from_url(redis_url, decode_responses=True) as client:
        limiter = RedisRateLimiter(
            client,
            {model: Quota(rpm=1)},
            key_prefix=f"test:{model}",
            sleep=clock.sleep,
            clock=clock,
        )
        limiter.acquire(model, timeout_s=120)  # a free slot: no wait
        limiter.acquire(model, timeout_s=120)  # the window is full: waits for it to pass
    labels = {"model": model}
    assert REGISTRY.get_sample_value("refract_rate_limiter_wait_seconds_count", labels) == 2
    waited = REGISTRY.get_sample_value("refract_rate_limiter_wait_seconds_sum", labels)
    # The window and its margin (60.25 s), less what passed between the two bookings.
    assert waited is not None and 59 <= waited <= 60.25
    no_wait = {"model": model, "le": "0.001"}
    assert REGISTRY.get_sample_value("refract_rate_limiter_wait_seconds_bucket", no_wait) == 1


@pytest.mark.parametrize(
    ("bind", "expected"),
    [
        ("127.0.0.1:9100", ("127.0.0.1", 9100)),
        (":9100", ("0.0.0.0", 9100)),
        ("[::1]:9100", ("::1", 9100)),
    ],
)
def test_a_metrics_bind_is_host_and_port(bind: str, expected: tuple[str, int]) -> None:
    assert parse_bind(bind) == expected


@pytest.mark.parametrize("bind", ["9100", "host:", "host:http", "host:70000"])
def test_a_bad_metrics_bind_is_refused(bind: str) -> None:
    with pytest.raises(ValueError, match="REFRACT_METRICS_BIND"):
        parse_bind(bind)


def test_a_worker_serves_its_own_metrics_without_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    model = f"m-{uuid.uuid4().hex[:8]}"
    metrics.model_call(model, "5xx")
    port = free_port()
    server = serve(f"127.0.0.1:{port}")
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    finally:
        server.shutdown()
        server.server_close()
    assert response.status_code == 200
    samples = parse(response.text)
    assert value(samples, "refract_model_calls_total", model=model, outcome="5xx") == 1
