"""Burst load against a running Refract API: how fast a crowd of visitors is served.

Submits ``--videos`` video jobs (the sample source) and ``--photos`` photo cards (the
sample photo) at once from ``--clients`` threads, follows each to its end by polling
with ETags, and prints submit latency, time to completion (p50/p95/max), throughput and
the final statuses. Traffic goes to the given API only; counts and time are bounded.

    refract up &                      # or any running stack
    python -m bench.load --api http://127.0.0.1:8000 --videos 20 --photos 10
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx

from launch.targets import load_source
from refract.jobs.catalog import FINAL_JOB_STATUSES

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@dataclass
class Sample:
    """One job's timings and outcome."""

    kind: str
    submit_s: float
    done_s: float
    status: str


def run_one(api: str, kind: str, deadline: float) -> Sample:
    """Submit one job and poll it (with If-None-Match) until final or the deadline."""
    with httpx.Client(base_url=api, timeout=30) as http:
        start = time.monotonic()
        if kind == "video":
            response = http.post(
                "/api/v1/jobs",
                json={"kind": "video", "source": load_source(EXAMPLES / "video.json")},
            )
        else:
            photo = (EXAMPLES / "astronaut.png").read_bytes()
            response = http.post(
                "/api/v1/jobs",
                data={"kind": "photocard", "prompt": "a conference badge"},
                files={"photo": ("me.png", photo, "image/png")},
            )
        submitted = time.monotonic() - start
        if response.status_code != 202:
            return Sample(kind, submitted, submitted, f"http {response.status_code}")
        job = response.json()
        etag = response.headers.get("etag", "")
        while job["status"] not in FINAL_JOB_STATUSES and time.monotonic() < deadline:
            time.sleep(float(response.headers.get("retry-after", "1")) / 4)
            response = http.get(f"/api/v1/jobs/{job['id']}", headers={"If-None-Match": etag})
            if response.status_code == 200:
                job, etag = response.json(), response.headers.get("etag", "")
        return Sample(kind, submitted, time.monotonic() - start, job["status"])


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    """Run the burst and print the report; non-zero if any job did not succeed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api", default="http://127.0.0.1:8000")
    parser.add_argument("--videos", type=int, default=20)
    parser.add_argument("--photos", type=int, default=10)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds, at most")
    args = parser.parse_args(argv)
    if not args.api.startswith(("http://127.", "http://localhost", "http://[::1]")):
        parser.error("load goes to a local API only (127.0.0.0/8, localhost, [::1])")
    kinds = ["video"] * min(args.videos, 500) + ["photo"] * min(args.photos, 500)
    deadline = time.monotonic() + args.timeout
    began = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, min(args.clients, 64))) as pool:
        samples = list(pool.map(lambda kind: run_one(args.api, kind, deadline), kinds))
    wall = time.monotonic() - began
    print(f"{len(samples)} jobs in {wall:.1f}s: {len(samples) / wall:.2f} jobs/s")
    for kind in ("video", "photo"):
        mine = [s for s in samples if s.kind == kind]
        if not mine:
            continue
        done = [s.done_s for s in mine]
        submit_ms = statistics.median(s.submit_s for s in mine) * 1000
        print(
            f"  {kind:<5} n={len(mine):<4} submit p50={submit_ms:.0f}ms"
            f"  done p50={percentile(done, 0.5):.2f}s p95={percentile(done, 0.95):.2f}s"
            f" max={max(done):.2f}s  {dict(Counter(s.status for s in mine))}"
        )
    return 0 if all(s.status == "succeeded" for s in samples) else 1


if __name__ == "__main__":
    sys.exit(main())
