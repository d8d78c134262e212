"""The status always catches up: a publish lost to a Redis blip is republished from the
database once Redis answers again, with no new change to the job (Redis reached through
a proxy whose link the test cuts)."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis

from refract.core.models import Job
from refract.jobs.catalog import JobKind
from refract.jobs.progress import ProgressBus
from refract.jobs.resource import job_resource
from refract.jobs.resync import committed_state
from tasks.runner import FeatureContext, execute_feature
from tasks.services import WorkerServices
from tasks.summary import summarize
from tests.support.stub_backend import StubBackend
from tests.support.tcp_proxy import CuttableProxy

MakeJob = Callable[..., Job]
SOURCE = {
    "title": "Brewing coffee",
    "description": "How to brew.",
    "transcript": [],
    "comments": [],
}
CATCH_UP_BOUND_S = 5.0


@pytest.fixture
def proxy(redis_url: str) -> Iterator[CuttableProxy]:
    parts = urlsplit(redis_url)
    assert parts.hostname and parts.port
    with CuttableProxy(parts.hostname, parts.port) as running:
        yield running


@pytest.fixture
def proxied(
    services: WorkerServices, proxy: CuttableProxy, redis_url: str
) -> Iterator[WorkerServices]:
    """The worker's services with progress going through the proxy."""
    client = redis.Redis.from_url(
        proxy.url(path=urlsplit(redis_url).path), decode_responses=True, socket_timeout=2
    )
    bus = ProgressBus(client, reload=committed_state(services.sessions), resync_interval_s=0.1)
    yield dataclasses.replace(services, bus=bus)
    client.close()


def database_resource(services: WorkerServices, job_id: str) -> dict[str, Any]:
    with services.session() as session:
        job = session.get(Job, uuid.UUID(job_id))
        assert job is not None
        return job_resource(job)


def test_a_result_published_while_redis_was_cut_shows_within_seconds_of_its_return(
    proxied: WorkerServices,
    services: WorkerServices,
    proxy: CuttableProxy,
    make_job: MakeJob,
    backend: StubBackend,
) -> None:
    job_id = str(make_job(JobKind.VIDEO, ["summary"], {"source": SOURCE}).id)

    def work(ctx: FeatureContext) -> Any:
        proxy.cut()  # the claim ("running") was published; the result will not be
        return summarize(ctx)

    outcome = execute_feature(proxied, job_id, "summary", "task-1", work)

    assert outcome["outcome"] == "succeeded"
    direct = services.bus  # the test's own view of Redis, not through the proxy
    stale = direct.snapshot(job_id)
    assert stale is not None and stale[1]["status"] == "running"
    assert proxied.bus.behind() == {job_id}

    proxy.restore()
    wanted = database_resource(services, job_id)
    ends = time.monotonic() + CATCH_UP_BOUND_S
    while (found := direct.snapshot(job_id)) is None or found[1] != wanted:
        assert time.monotonic() < ends, f"snapshot still {found and found[1]['status']}"
        time.sleep(0.05)
    assert found[0] == wanted["version"] and wanted["status"] == "succeeded"
    assert proxied.bus.behind() == set()
    # A client following the stream learns where the job stands.
    last = direct.read(job_id)[-1]
    assert last.type == "job" and last.data["status"] == "succeeded"


def test_nothing_is_republished_without_a_way_to_reload(
    services: WorkerServices, proxy: CuttableProxy, redis_url: str
) -> None:
    client = redis.Redis.from_url(proxy.url(path=urlsplit(redis_url).path), decode_responses=True)
    bus = ProgressBus(client)
    proxy.cut()
    assert bus.publish("job-1", 1, {"status": "running"}, []) is False
    proxy.restore()
    assert bus.catch_up() == 1 and bus.behind() == {"job-1"}
    client.close()
