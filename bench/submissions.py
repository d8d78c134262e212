"""The API's submission row: ``POST /api/v1/jobs`` from a crowd while the workers run them.

Submits ``count`` video jobs from ``clients`` keep-alive client threads, first to the
bare Flask baseline (``bench/bare.py``: parse the body, answer 202 with a job-sized body
and a ``Location``), then to Refract, whose workers start running the jobs while the rest
are still being submitted. Compares the rates and reports Refract's p99
(:func:`measure_submissions`, one :class:`~bench.table.Row`). Each job is a YouTube
link, as a booth sends it, or with ``--form source`` the video's material inline (see
:mod:`bench.videos`). Against a running stack:

    refract up --port 8000 &
    python -m bench.submissions --api http://127.0.0.1:8000 [--key <client key>]

Traffic goes to 127.0.0.1 only; afterwards it waits (at most ``--drain`` seconds) for
the workers to finish the jobs, so that whatever is measured next starts idle.
"""

from __future__ import annotations

import argparse
import threading
import time
from contextlib import ExitStack
from typing import Any

import httpx

from bench.api import bare_flask, ratio_row
from bench.clients import run_clients
from bench.table import Row, markdown, p99
from bench.videos import FORMS, video_bodies
from refract.jobs.catalog import FINAL_JOB_STATUSES

GOAL_RATIO = 0.2
GOAL_P99_MS = 50.0


def submit_all(
    url: str, bodies: list[dict[str, Any]], headers: dict[str, str], clients: int
) -> tuple[float, float, list[str]]:
    """POST every body from ``clients`` threads; the rate, the p99 (ms) and the
    ``Location`` of each answer (every answer must be a 202)."""
    locations: list[str] = []
    lock = threading.Lock()
    pending = iter(bodies)

    def post(http: httpx.Client) -> bool:
        with lock:
            body = next(pending, None)
        if body is None:
            return False
        response = http.post("/api/v1/jobs", json=body)
        if response.status_code != 202:
            raise RuntimeError(
                f"{url}: a submission was refused: {response.status_code} {response.text[:200]}"
            )
        with lock:
            locations.append(response.headers["Location"])
        return True

    load = run_clients(url, headers, clients, post)
    return load.rate, p99(load.latencies) * 1000, locations


def drain(api: str, locations: list[str], auth: dict[str, str], limit_s: float) -> None:
    """Wait (at most ``limit_s``) until every job at ``locations`` is final."""
    deadline = time.monotonic() + limit_s
    with httpx.Client(base_url=api, headers=auth, timeout=10) as http:
        for location in locations:
            while time.monotonic() < deadline:
                if http.get(location).json().get("status") in FINAL_JOB_STATUSES:
                    break
                time.sleep(0.5)


def measure_submissions(
    api: str,
    bare: str,
    auth: dict[str, str],
    count: int = 300,
    clients: int = 8,
    drain_s: float = 180.0,
    form: str = "link",
) -> Row:
    """``count`` video jobs from ``clients`` threads to Refract (its workers running
    them meanwhile) beside bare Flask (running at ``bare``): the ratio of the rates and
    Refract's p99, for video jobs of ``form`` (:mod:`bench.videos`). Waits (at most
    ``drain_s``) for the jobs to finish before returning."""
    bodies = video_bodies(count, form)
    base_rate, base_p99, _ = submit_all(bare, bodies, {}, clients)
    rate, p99, locations = submit_all(api, bodies, auth, clients)
    drain(api, locations, auth, drain_s)
    row = ratio_row(
        f"{count} submissions from {clients} clients while the workers run them"
        f"{'' if form == 'link' else ' (the material inline)'}: rate ÷ bare Flask's; p99",
        GOAL_RATIO,
        (rate, p99),
        (base_rate, base_p99),
    )
    met = row.met and p99 <= GOAL_P99_MS
    return Row(row.what, row.measured, row.baseline, f"{row.goal}; p99 ≤ {GOAL_P99_MS:g} ms", met)


def main() -> None:
    """Start bare Flask (unless given), measure, print the row."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--api", required=True, help="a running Refract API")
    parser.add_argument("--key", default=None, help="a client key (none with keys off)")
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--drain", type=float, default=180.0, help="seconds to wait after")
    parser.add_argument("--form", choices=FORMS, default="link", help="what each job carries")
    parser.add_argument("--bare", default=None, help="a running bare Flask (else started)")
    parser.add_argument("--bare-port", type=int, default=8899)
    args = parser.parse_args()

    auth = {"Authorization": f"Bearer {args.key}"} if args.key else {}
    with ExitStack() as stack:
        bare = args.bare or stack.enter_context(bare_flask(args.bare_port, 2, 16))
        row = measure_submissions(
            args.api, bare, auth, args.count, args.clients, args.drain, args.form
        )
    print(markdown([row]))


if __name__ == "__main__":
    main()
