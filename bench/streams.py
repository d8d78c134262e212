"""A crowd following its jobs: 1,000 open event streams, and the API's reads beside them.

Opens ``--streams`` Server-Sent Events streams on one running job (from one asyncio
loop, so the client holds them cheaply), waits until every one has its first bytes, then
times ``--reads`` plain ``GET /api/v1/jobs/<id>`` (and ``/healthz``) one after the other
while the streams stay open. Prints how many reads were answered and their p50/p99.

The job must stay running for the measure (e.g. a fake Gemini with a long latency:
``python -m tests.support.fakes.gemini --latency 120``). Streams go to ``--events``
(the proxy, or an events process) and reads to ``--api``; both default to ``--api``.

    python -m bench.streams --api http://127.0.0.1:8080 --job <id> --streams 1000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import time
from dataclasses import dataclass

import httpx

from bench.table import Row, markdown, p99


async def hold_stream(
    client: httpx.AsyncClient, path: str, opened: asyncio.Event, counter: list[int], n: int
) -> None:
    """Open one stream, count it once its first bytes came, and keep reading."""
    async with client.stream("GET", path, headers={"Accept": "text/event-stream"}) as response:
        response.raise_for_status()
        async for _chunk in response.aiter_bytes():
            if counter[0] < n:
                counter[0] += 1
                if counter[0] == n:
                    opened.set()
            # Keep reading until cancelled: the stream stays open.


def timed_reads(api: str, path: str, reads: int, headers: dict[str, str]) -> list[float]:
    """Latencies (ms) of ``reads`` sequential reads; a read that fails is not timed."""
    latencies = []
    with httpx.Client(base_url=api, headers=headers, timeout=4.0) as http:
        for _ in range(reads):
            started = time.perf_counter()
            try:
                response = http.get(path)
            except httpx.HTTPError:
                continue
            if response.status_code == 200:
                latencies.append((time.perf_counter() - started) * 1000)
    return latencies


@dataclass(frozen=True)
class StreamsRun:
    """What one run saw: streams opened, and the latencies of the reads beside them."""

    streams: int
    opened: int
    open_s: float
    reads: int
    job_reads: list[float]
    health_reads: list[float]


async def hold_and_read(
    api: str, events: str, job_id: str, streams: int, reads: int, headers: dict[str, str]
) -> StreamsRun:
    """Open the streams, time the reads beside them, close everything."""
    path = f"/api/v1/jobs/{job_id}"
    limits = httpx.Limits(max_connections=streams + 10, max_keepalive_connections=0)
    opened = asyncio.Event()
    counter = [0]
    async with httpx.AsyncClient(
        base_url=events, headers=headers, limits=limits, timeout=httpx.Timeout(30, read=None)
    ) as client:
        started = time.perf_counter()
        tasks = [
            asyncio.create_task(hold_stream(client, f"{path}/events", opened, counter, streams))
            for _ in range(streams)
        ]
        # Those that did not open in time are counted as such, not waited for.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(opened.wait(), timeout=120)
        open_s = time.perf_counter() - started
        loop = asyncio.get_running_loop()
        job_reads = await loop.run_in_executor(None, timed_reads, api, path, reads, headers)
        health_reads = await loop.run_in_executor(None, timed_reads, api, "/healthz", reads, {})
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return StreamsRun(streams, counter[0], open_s, reads, job_reads, health_reads)


def _summary(latencies: list[float], reads: int) -> str:
    if len(latencies) <= 2:
        return f"{len(latencies)} of {reads} answered"
    return (
        f"{len(latencies)} of {reads} answered, p50 {statistics.median(latencies):.1f} ms, "
        f"p99 {p99(latencies):.1f} ms"
    )


def measure_streams(
    api: str,
    events: str,
    job_id: str,
    auth: dict[str, str],
    streams: int = 1000,
    reads: int = 300,
) -> Row:
    """The streams row: every read beside ``streams`` open streams answered, p99 <= 20 ms."""
    run = asyncio.run(hold_and_read(api, events, job_id, streams, reads, auth))
    met = run.opened == streams and len(run.job_reads) == reads and p99(run.job_reads) <= 20.0
    return Row(
        what=f"{streams:,} open event streams: `GET /api/v1/jobs/<id>` beside them",
        measured=(
            f"{run.opened:,} streams open in {run.open_s:.1f} s; {_summary(run.job_reads, reads)}"
        ),
        baseline=f"`GET /healthz` beside them: {_summary(run.health_reads, reads)}",
        goal="every GET answered, p99 ≤ 20 ms",
        met=met,
    )


def main() -> None:
    """Parse the arguments, measure and print the row."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--api", required=True)
    parser.add_argument("--events", default=None)
    parser.add_argument("--job", required=True, help="a job that stays running meanwhile")
    parser.add_argument("--key", default=None)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--reads", type=int, default=300)
    args = parser.parse_args()
    auth = {"Authorization": f"Bearer {args.key}"} if args.key else {}
    row = measure_streams(
        args.api, args.events or args.api, args.job, auth, args.streams, args.reads
    )
    print(markdown([row]))


if __name__ == "__main__":
    main()
