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
import statistics
import time

import httpx


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


async def run(args: argparse.Namespace) -> None:
    """Open the streams, time the reads beside them, close everything."""
    headers = {"Authorization": f"Bearer {args.key}"} if args.key else {}
    events_url = args.events or args.api
    path = f"/api/v1/jobs/{args.job}"
    limits = httpx.Limits(max_connections=args.streams + 10, max_keepalive_connections=0)
    opened = asyncio.Event()
    counter = [0]
    async with httpx.AsyncClient(
        base_url=events_url, headers=headers, limits=limits, timeout=httpx.Timeout(30, read=None)
    ) as client:
        started = time.perf_counter()
        tasks = [
            asyncio.create_task(
                hold_stream(client, f"{path}/events", opened, counter, args.streams)
            )
            for _ in range(args.streams)
        ]
        try:
            await asyncio.wait_for(opened.wait(), timeout=120)
        except TimeoutError:
            print(f"only {counter[0]} of {args.streams} streams opened in 120 s")
        print(f"{counter[0]} streams open after {time.perf_counter() - started:.1f} s")
        loop = asyncio.get_running_loop()
        job_reads = await loop.run_in_executor(
            None, timed_reads, args.api, path, args.reads, headers
        )
        health_reads = await loop.run_in_executor(
            None, timed_reads, args.api, "/healthz", args.reads, headers
        )
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for name, latencies in (("GET /api/v1/jobs/<id>", job_reads), ("GET /healthz", health_reads)):
        if len(latencies) > 2:
            cuts = statistics.quantiles(latencies, n=100)
            print(
                f"{name}: {len(latencies)} of {args.reads} answered; "
                f"p50 {statistics.median(latencies):.1f} ms, p99 {cuts[98]:.1f} ms"
            )
        else:
            print(f"{name}: {len(latencies)} of {args.reads} answered")


def main() -> None:
    """Parse the arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--api", required=True)
    parser.add_argument("--events", default=None)
    parser.add_argument("--job", required=True, help="a job that stays running meanwhile")
    parser.add_argument("--key", default=None)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--reads", type=int, default=300)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
