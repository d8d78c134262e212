"""Fan-out: a crowd of video jobs at once, against what the worker's threads allow.

Each video job is three model calls. With ``T`` worker threads and a model that takes
``L`` seconds, ``N`` jobs cannot finish in under ``N x 3 x L / T`` (every thread always
waiting on a call): the *ideal*. The measure is ideal ÷ wall, from the first submission
to the last job's final state; 1.0 means the threads never waited on Refract itself.
Beside it: how long the submissions took (the API's share of the wall) and ideal ÷ the
workers' span (first feature started to last feature finished, the jobs' timestamps).

Beside it, for context, the booth-style baseline: the same number of calls through the
google-genai SDK from a thread pool of ``T`` threads straight at the same fake Gemini
(no queue, no database, no progress), ideal ÷ wall.

Each job is a YouTube link, as a booth sends it, or with ``--form source`` the video's
material inline (see :mod:`bench.videos`). Against a running stack whose Gemini is the
fake with a known latency (and whose YouTube knows the links) and whose worker runs ``T``
threads (``REFRACT_WORKER_CONCURRENCY`` or ``refract up --concurrency``):

    python -m bench.fanout --api http://127.0.0.1:8000 --jobs 48 --threads 24 \
        --model-latency 1.0 --gemini http://127.0.0.1:PORT
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from bench.table import Row
from bench.videos import FORMS, video_bodies
from refract.jobs.catalog import FINAL_JOB_STATUSES

CALLS_PER_JOB = 3  # summary, comments, thumbnail
# Between rounds of conditional reads. The crowd's end is read from the jobs' own
# timestamps, not from when a poll saw it, so polling slowly costs the measure nothing,
# while polling hard would take the CPU the workers are being measured on.
POLL_S = 0.5


def _submit(http: httpx.Client, body: dict[str, Any]) -> str:
    response = http.post("/api/v1/jobs", json=body)
    response.raise_for_status()
    return str(response.json()["id"])


@dataclass(frozen=True)
class Crowd:
    """How long the crowd took: all of it, its submissions, and the workers' span."""

    wall_s: float
    submit_s: float
    # From the first feature's start to the last one's end, by the jobs' own timestamps.
    span_s: float


def run_crowd(
    api: str, jobs: int, auth: dict[str, str], *, form: str = "link", timeout_s: float = 300.0
) -> Crowd:
    """Submit ``jobs`` video jobs of ``form`` at once and wait until all are final.

    Submissions go out from a pool of clients at once; each job is then followed by
    conditional reads (``If-None-Match``) until its status is final. A job that did not
    succeed is reported (the ratio would flatter a run that lost work).
    """
    bodies = video_bodies(jobs, form)
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
    with httpx.Client(base_url=api, headers=auth, timeout=60, limits=limits) as http:
        started = time.perf_counter()
        started_at = datetime.now(UTC)
        with ThreadPoolExecutor(max_workers=min(jobs, 16)) as pool:
            ids = list(pool.map(lambda body: _submit(http, body), bodies))
        submitted = time.perf_counter() - started
        etags: dict[str, str] = {}
        pending = set(ids)
        failed: list[str] = []
        starts: list[datetime | None] = []
        ends: list[datetime | None] = []
        deadline = started + timeout_s
        while pending:
            if time.perf_counter() > deadline:
                raise RuntimeError(f"{len(pending)} of {jobs} jobs not final in {timeout_s} s")
            for job_id in list(pending):
                headers = {"If-None-Match": etags[job_id]} if job_id in etags else {}
                response = http.get(f"/api/v1/jobs/{job_id}", headers=headers)
                if response.status_code == 304:
                    continue
                response.raise_for_status()
                etags[job_id] = response.headers.get("ETag", "")
                job = response.json()
                status = job["status"]
                if status in FINAL_JOB_STATUSES:
                    pending.discard(job_id)
                    for feature in job["features"].values():
                        starts.append(_at(feature["started_at"]))
                        ends.append(_at(feature["finished_at"]))
                    if status != "succeeded":
                        failed.append(f"{job_id} {status}")
            if pending:
                time.sleep(POLL_S)
    if failed:
        print(f"warning: {len(failed)} jobs did not succeed: {failed[:5]}")
    first = min((at for at in starts if at), default=None)
    last = max((at for at in ends if at), default=None)
    if last is None:
        raise RuntimeError("no feature of the crowd has an end time")
    # Same host, same clock: from the first submission to the last feature's end.
    wall = (last - started_at).total_seconds()
    span = (last - first).total_seconds() if first else wall
    return Crowd(wall, submitted, span)


def _at(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def run_booth(gemini: str, calls: int, threads: int) -> float:
    """The booth's way: ``calls`` SDK calls from a pool of ``threads``; the wall time."""
    from google import genai
    from google.genai import types

    client = genai.Client(
        api_key="bench-key",
        http_options=types.HttpOptions(base_url=gemini, api_version="v1beta", timeout=120_000),
    )
    try:
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(
                pool.map(
                    lambda n: client.models.generate_content(
                        model="gemini-2.5-flash", contents=f"Summarise call {n}"
                    ),
                    range(calls),
                )
            )
        return time.perf_counter() - started
    finally:
        client.close()


def measure_fanout(
    api: str,
    jobs: int,
    threads: int,
    model_latency: float,
    auth: dict[str, str],
    *,
    gemini: str | None = None,
    form: str = "link",
) -> Row:
    """The fan-out row: ideal ÷ wall for ``jobs`` video jobs of ``form`` (see
    :mod:`bench.videos`) on ``threads`` threads, and
    the booth-style thread pool's ratio as baseline: against ``gemini`` (the stack's
    fake's URL) if given, else against a fake of its own with the same latency."""
    calls = jobs * CALLS_PER_JOB
    ideal = calls * model_latency / threads
    crowd = run_crowd(api, jobs, auth, form=form)
    wall = crowd.wall_s
    ratio = ideal / wall
    if gemini is not None:
        booth_wall = run_booth(gemini, calls, threads)
    else:
        # A fake of its own, in this process as bench.quota's booth run uses one.
        from tests.support.fakes.gemini import FakeGemini

        with FakeGemini() as fake:
            fake.latency_s = model_latency
            booth_wall = run_booth(fake.url, calls, threads)
    baseline = (
        f"booth thread pool, same {calls} calls: {ideal / booth_wall:.2f} "
        f"({ideal:.1f} s ÷ {booth_wall:.1f} s)"
    )
    return Row(
        what=(
            f"{jobs} video jobs at once, {threads} worker threads: "
            f"ideal ({calls} calls x {model_latency:g} s ÷ {threads}) ÷ wall"
        ),
        measured=(
            f"{ratio:.2f} ({ideal:.1f} s ÷ {wall:.1f} s; the {jobs} submissions took "
            f"{crowd.submit_s:.1f} s; first feature start to last end {crowd.span_s:.1f} s: "
            f"{ideal / crowd.span_s:.2f})"
        ),
        baseline=baseline,
        goal="≥ 0.90",
        met=ratio >= 0.90,
    )


def main() -> None:
    """Measure the crowd (and the booth baseline when ``--gemini`` is given); print it."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--api", required=True)
    parser.add_argument("--key", default=None)
    parser.add_argument("--jobs", type=int, default=48)
    parser.add_argument("--threads", type=int, default=24)
    parser.add_argument("--model-latency", type=float, default=1.0)
    parser.add_argument("--form", choices=FORMS, default="link", help="what each job carries")
    parser.add_argument(
        "--gemini", default=None, help="a fake Gemini for the baseline (default: its own)"
    )
    args = parser.parse_args()
    auth = {"Authorization": f"Bearer {args.key}"} if args.key else {}
    row = measure_fanout(
        args.api,
        args.jobs,
        args.threads,
        args.model_latency,
        auth,
        gemini=args.gemini,
        form=args.form,
    )
    print(f"{row.what}: {row.measured}; baseline {row.baseline}; goal {row.goal}")


if __name__ == "__main__":
    main()
