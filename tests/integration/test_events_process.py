"""``refract events`` behind the reverse proxy: event streams go to gevent workers, so
hundreds of open streams leave every API thread free for reads.

The module's ``refract up`` serves the API; an events process shares its settings (the
same database, Redis and signing secret); nginx with deploy/nginx.conf routes streams to
the events process and everything else to the API, as in docker-compose.yml.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.bodies import make_source
from tests.support.fakes.gemini import FakeGemini, Reply
from tests.support.proxy import ProxyServer
from tests.support.services import free_port
from tests.support.sse import parse_sse
from tests.support.stack import RefractStack, wait_for_job

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

STREAMS = 300


@pytest.fixture(scope="module")
def events_url(stack: RefractStack) -> Iterator[str]:
    """`refract events` on a free port, with the stack's settings and secret."""
    port = free_port()
    secret = (stack.workdir / "state" / "secret_key").read_text().strip()
    env = {**stack.env, "REFRACT_AUTH": "off", "REFRACT_SECRET_KEY": secret}
    log_path = stack.workdir / "events.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "launch.cli", "events", "--port", str(port), "--access-log"],
            cwd=stack.workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            raise TimeoutError(f"refract events not ready:\n{log_path.read_text()[-3000:]}")
        yield url
    finally:
        process.terminate()
        process.wait(30)


@pytest.fixture(scope="module")
def front(
    stack: RefractStack, events_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxyServer]:
    """nginx: streams to the events process, the rest to the API."""
    api, events = urlsplit(stack.url), urlsplit(events_url)
    workdir: Path = tmp_path_factory.mktemp("front")
    with ProxyServer(
        f"{api.hostname}:{api.port}",
        workdir,
        events_upstream=f"{events.hostname}:{events.port}",
        read_timeout_s=10,
    ) as running:
        yield running


def test_a_stream_through_the_front_is_served_by_the_events_process(
    front: ProxyServer, stack: RefractStack
) -> None:
    with httpx.Client(base_url=front.url, timeout=30) as http:
        job = http.post("/api/v1/jobs", json={"kind": "video", "source": make_source("ev")})
        assert job.status_code == 202, job.text
        job_id = job.json()["id"]
        assert wait_for_job(http, job_id)["status"] == "succeeded"
        body = http.get(f"/api/v1/jobs/{job_id}/events").text
    frames, _ = parse_sse(body)
    assert frames[-1].event == "job" and frames[-1].data["final"] is True
    # Resuming after the first event replays the rest, as from the API itself.
    with httpx.Client(base_url=front.url, timeout=30) as http:
        resumed = http.get(
            f"/api/v1/jobs/{job_id}/events", headers={"Last-Event-ID": str(frames[0].id)}
        ).text
    assert [f.id for f in parse_sse(resumed)[0]] == [f.id for f in frames[1:]]
    events_log = (stack.workdir / "events.log").read_text()
    assert f"/api/v1/jobs/{job_id}/events" in events_log


def test_hundreds_of_open_streams_leave_the_api_answering(
    front: ProxyServer, fake_gemini: FakeGemini
) -> None:
    # Every call of the job hangs until it times out, three features three times each: the
    # job stays running for several seconds, and every stream stays open on it.
    fake_gemini.script(None, *[Reply.hang(60) for _ in range(9)])
    with httpx.Client(base_url=front.url, timeout=30) as http:
        job = http.post("/api/v1/jobs", json={"kind": "video", "source": make_source("crowd")})
        job_id = job.json()["id"]

    async def crowd() -> tuple[int, list[int]]:
        opened = 0
        first_bytes = asyncio.Event()
        limits = httpx.Limits(max_connections=STREAMS + 5, max_keepalive_connections=0)
        timeout = httpx.Timeout(30, read=None)

        async def follow(client: httpx.AsyncClient) -> None:
            nonlocal opened
            async with client.stream("GET", f"/api/v1/jobs/{job_id}/events") as response:
                async for _chunk in response.aiter_bytes():
                    opened += 1
                    if opened == STREAMS:
                        first_bytes.set()
                    await asyncio.Event().wait()  # hold the stream open

        async with httpx.AsyncClient(base_url=front.url, limits=limits, timeout=timeout) as client:
            tasks = [asyncio.create_task(follow(client)) for _ in range(STREAMS)]
            await asyncio.wait_for(first_bytes.wait(), timeout=60)
            loop = asyncio.get_running_loop()
            statuses = await loop.run_in_executor(None, reads, front.url, job_id)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return opened, statuses

    opened, statuses = asyncio.run(crowd())
    assert opened == STREAMS
    # Every read through the front is answered while all the streams are open.
    assert statuses == [200] * len(statuses)
    with httpx.Client(base_url=front.url, timeout=30) as http:
        assert http.post(f"/api/v1/jobs/{job_id}/cancel").status_code == 202


def reads(url: str, job_id: str) -> list[int]:
    """Status codes of 40 reads of the job and the health endpoint."""
    with httpx.Client(base_url=url, timeout=10) as http:
        return [
            http.get(path).status_code
            for _ in range(20)
            for path in (f"/api/v1/jobs/{job_id}", "/healthz")
        ]
