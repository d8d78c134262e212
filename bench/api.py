"""The API's read rows: ``GET /api/v1/jobs/<id>`` and its ``304``, against a bare Flask.

Starts the baseline (``bench/bare.py``) under the same gunicorn shape as ``refract api``
(2 workers x 16 threads), then hammers both with the same clients for the same time:
first plain reads, then reads sending the last ``ETag`` (``304``). Prints requests per
second and the ratio to the baseline. Against a running stack:

    refract up --port 8000 &
    python -m bench.api --api http://127.0.0.1:8000 [--key <client key>]

Traffic goes to 127.0.0.1 only, bounded by ``--seconds``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from launch.targets import load_source
from refract.core.ids import parse_id

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
    url: str, path: str, headers: dict[str, str], clients: int, seconds: float
) -> tuple[float, float]:
    """Requests per second and p99 latency (ms) of ``clients`` keep-alive clients."""
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client() -> None:
        mine: list[float] = []
        with httpx.Client(base_url=url, headers=headers, timeout=10) as http:
            while time.monotonic() < stop:
                started = time.perf_counter()
                response = http.get(path)
                mine.append(time.perf_counter() - started)
                if response.status_code not in (200, 304):
                    raise RuntimeError(f"{path}: {response.status_code} {response.text[:200]}")
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - started
    p99 = statistics.quantiles(latencies, n=100)[98] * 1000 if len(latencies) > 100 else 0.0
    return len(latencies) / wall, p99


def main() -> None:
    """Measure both and print the rows."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--api", required=True, help="a running Refract API")
    parser.add_argument("--key", default=None, help="a client key (none with keys off)")
    parser.add_argument("--job", default=None, help="a job to read (else one is submitted)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--bare-port", type=int, default=8899)
    args = parser.parse_args()

    auth = {"Authorization": f"Bearer {args.key}"} if args.key else {}
    job_id = args.job
    if job_id is None:
        body = {**VIDEO, "source": load_source(EXAMPLES / "video.json")}
        created = httpx.post(f"{args.api}/api/v1/jobs", json=body, headers=auth, timeout=30)
        created.raise_for_status()
        job_id = created.json()["id"]
    parse_id(job_id, "job")
    path = f"/api/v1/jobs/{job_id}"
    etag = httpx.get(f"{args.api}{path}", headers=auth, timeout=10).headers["ETag"]

    rows = []
    with bare_flask(args.bare_port, 2, 16) as bare:
        for name, ours_headers, bare_headers in (
            ("GET /api/v1/jobs/<id>", auth, {}),
            (
                "same, If-None-Match (304)",
                {**auth, "If-None-Match": etag},
                {"If-None-Match": '"bare-1"'},
            ),
        ):
            base_rate, base_p99 = hammer(bare, path, bare_headers, args.clients, args.seconds)
            rate, p99 = hammer(args.api, path, ours_headers, args.clients, args.seconds)
            rows.append((name, rate, p99, base_rate, base_p99))
    print(f"{args.clients} keep-alive clients, {args.seconds:g} s each\n")
    print("| what | Refract | p99 | bare Flask | p99 | ratio |")
    print("|---|---|---|---|---|---|")
    for name, rate, p99, base_rate, base_p99 in rows:
        print(
            f"| {name} | {rate:.0f}/s | {p99:.1f} ms | {base_rate:.0f}/s | {base_p99:.1f} ms "
            f"| {rate / base_rate:.2f} |"
        )


if __name__ == "__main__":
    main()
