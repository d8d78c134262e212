"""The API's read rows: ``GET /api/v1/jobs/<id>`` and its ``304``, against a bare Flask.

Starts the baseline (``bench/bare.py``) under the same gunicorn shape as ``refract api``
(2 workers x 16 threads), then hammers both with the same clients for the same time:
first plain reads, then reads sending the last ``ETag`` (``304``). Prints requests per
second and the ratio to the baseline (:func:`measure_reads`, one :class:`~bench.table.Row`
each). Against a running stack:

    refract up --port 8000 &
    python -m bench.api --api http://127.0.0.1:8000 [--key <client key>] [--bare <url>]

Traffic goes to 127.0.0.1 only, bounded by ``--seconds``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx

from bench.bare import ETAG
from bench.clients import run_clients
from bench.table import Row, markdown, p99
from launch.targets import load_source
from refract.core.ids import parse_id
from refract.jobs.catalog import FINAL_JOB_STATUSES

VIDEO = {"kind": "video", "features": ["summary"]}
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@contextmanager
def bare_flask(port: int, workers: int, threads: int) -> Iterator[str]:
    """The baseline under gunicorn on ``port``, for the block."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-k",
            "gthread",
            "-w",
            str(workers),
            "--threads",
            str(threads),
            "-b",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "bench.bare:app",
        ]
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.get(f"{url}/api/v1/jobs/x", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(10)


def hammer(
    url: str,
    path: str,
    headers: dict[str, str],
    clients: int,
    seconds: float,
    statuses: Counter[int] | None = None,
) -> tuple[float, float]:
    """Requests per second and p99 latency (ms) of ``clients`` keep-alive clients reading
    ``path`` for ``seconds``; ``statuses`` (if given) counts the answers by status."""
    stop = time.monotonic() + seconds
    seen: Counter[int] = Counter() if statuses is None else statuses
    lock = threading.Lock()

    def read(http: httpx.Client) -> bool:
        if time.monotonic() >= stop:
            return False
        response = http.get(path)
        if response.status_code not in (200, 304):
            raise RuntimeError(f"{path}: {response.status_code} {response.text[:200]}")
        with lock:
            seen[response.status_code] += 1
        return True

    load = run_clients(url, headers, clients, read, timeout_s=10)
    return load.rate, p99(load.latencies) * 1000


def ratio_row(what: str, goal: float, ours: tuple[float, float], bare: tuple[float, float]) -> Row:
    """A row comparing Refract's rate (and p99) with bare Flask's; met at ``goal``."""
    ratio = ours[0] / bare[0] if bare[0] else 0.0
    return Row(
        what=what,
        measured=f"{ratio:.2f} ({ours[0]:.0f}/s, p99 {ours[1]:.1f} ms)",
        baseline=f"bare Flask {bare[0]:.0f}/s, p99 {bare[1]:.1f} ms",
        goal=f"≥ {goal:g}",
        met=ratio >= goal,
    )


def measure_reads(
    api: str,
    bare: str,
    job_id: str,
    auth: dict[str, str],
    clients: int = 16,
    seconds: float = 5.0,
) -> list[Row]:
    """The read rows: ``GET /api/v1/jobs/<id>`` of ``job_id`` (best a final job: its
    ETag stays put), then the same with ``If-None-Match`` (304), each beside bare Flask
    (already running at ``bare``) with the same clients for the same time."""
    path = f"/api/v1/jobs/{parse_id(job_id, 'job')}"
    rows = []
    for what, goal, conditional in (
        ("`GET /api/v1/jobs/<id>` rate ÷ bare Flask's", 0.8, False),
        ("the same with `If-None-Match` (304) ÷ bare Flask's", 0.9, True),
    ):
        bare_headers = {"If-None-Match": ETAG} if conditional else {}
        base = hammer(bare, path, bare_headers, clients, seconds)
        for _attempt in range(2 if conditional else 1):
            ours_headers = dict(auth)
            if conditional:
                # Read just before: the ETag moves when the URL-signing epoch ticks over
                # (every quarter of the URLs' lifetime), and an ETag read earlier may be
                # stale. Should it tick over during the run, the run is made once more.
                etag = httpx.get(f"{api}{path}", headers=auth, timeout=10).headers["ETag"]
                ours_headers["If-None-Match"] = etag
            statuses: Counter[int] = Counter()
            ours = hammer(api, path, ours_headers, clients, seconds, statuses)
            if set(statuses) == {304}:
                break
        row = ratio_row(what, goal, ours, base)
        if conditional and set(statuses) != {304}:
            # The ETag moved during the run (a job still changing, or the URL-signing
            # epoch ticked over): part of this row measured full answers, not 304s, so
            # it says nothing of the goal.
            shown = ", ".join(f"{n} x {code}" for code, n in sorted(statuses.items()))
            row = Row(row.what, f"{row.measured} [{shown}]", row.baseline, row.goal, False)
        rows.append(row)
    return rows


def video_job(api: str, auth: dict[str, str], *, title_suffix: str = "") -> str:
    """Submit a one-feature video job (``examples/video.json``, its title ending in
    ``title_suffix``); its id."""
    source = load_source(EXAMPLES / "video.json")
    source["title"] = f"{source['title']}{title_suffix}"
    body = {**VIDEO, "source": source}
    created = httpx.post(f"{api}/api/v1/jobs", json=body, headers=auth, timeout=30)
    created.raise_for_status()
    return str(created.json()["id"])


def finished_job(api: str, auth: dict[str, str]) -> str:
    """Submit a one-feature video job (:func:`video_job`) and wait until it is final (at
    most a minute); its id."""
    job_id = video_job(api, auth)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job = httpx.get(f"{api}/api/v1/jobs/{job_id}", headers=auth, timeout=10).json()
        if job["status"] in FINAL_JOB_STATUSES:
            return job_id
        time.sleep(0.2)
    raise RuntimeError(f"job {job_id} did not finish in 60 s")


def main() -> None:
    """Start bare Flask, measure both, print the rows."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--api", required=True, help="a running Refract API")
    parser.add_argument("--key", default=None, help="a client key (none with keys off)")
    parser.add_argument("--job", default=None, help="a job to read (else one is submitted)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--bare", default=None, help="a running bare Flask (else started)")
    parser.add_argument("--bare-port", type=int, default=8899)
    args = parser.parse_args()

    auth = {"Authorization": f"Bearer {args.key}"} if args.key else {}
    job_id = args.job or finished_job(args.api, auth)
    with ExitStack() as stack:
        bare = args.bare or stack.enter_context(bare_flask(args.bare_port, 2, 16))
        rows = measure_reads(args.api, bare, job_id, auth, args.clients, args.seconds)
    print(f"{args.clients} keep-alive clients, {args.seconds:g} s each\n")
    print(markdown(rows))


if __name__ == "__main__":
    main()
