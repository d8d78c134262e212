"""Every row of the speed table from one run: ``python -m bench``.

Starts its own stack (:mod:`bench.stack`: a fake Gemini with ``--model-latency`` per
answer, redis-server, a fresh Postgres database, ``refract up``, ``refract events`` and
the bare Flask baseline), makes a client key, then measures, in order: one video job and
one photo card alone (their floors: one and two model latencies), a crowd of video jobs
on ``--worker-threads`` threads, the API's reads and ``304`` beside bare Flask,
submissions from 8 clients while the workers run them, 1,000 open event streams with
reads beside them, the Gemini quota (its own fake and Redis, beside the booth's thread
pool) and identical inputs from a crowd (the reply cache). Prints the table as Markdown,
with the machine it ran on; nothing is asserted. Traffic goes to 127.0.0.1 only.

    python -m bench                        # everything, about five minutes
    python -m bench --only latency,reads   # some rows
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench.stack import BenchStack, bench_stack
from bench.table import Row, markdown
from bench.videos import FORMS
from refract.core.logs import configure_logging
from refract.core.settings import Settings

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
ROWS = ("latency", "fanout", "reads", "submissions", "streams", "quota", "memo")


def machine() -> str:
    """One line about where the numbers came from."""
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{platform.node()}: {os.cpu_count()} cores, {memory_gib:.0f} GiB, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    )


def client_key(api_env: dict[str, str]) -> str:
    """A client key made with ``refract keys create``: the bench calls as a booth would."""
    created = subprocess.run(
        [sys.executable, "-m", "launch.cli", "keys", "create", "--name", "bench"],
        env=api_env,
        capture_output=True,
        text=True,
        check=True,
    )
    return created.stdout.strip().splitlines()[-1]


# Each row's measure: given the stack (None for rows that bring their own), the client's
# headers and the arguments. Imported when chosen, so a row's needs stay its own.
Measure = Callable[["BenchStack | None", dict[str, str], argparse.Namespace], list[Row]]


def latency_rows(
    st: BenchStack | None, auth: dict[str, str], args: argparse.Namespace
) -> list[Row]:
    """One video job, then one photo card, alone."""
    from bench.latency import measure_latency

    assert st is not None
    return [
        measure_latency(st.api, kind, args.runs, st.model_latency, auth, args.video_form)
        for kind in ("video", "photo")
    ]


def fanout_rows(st: BenchStack | None, auth: dict[str, str], args: argparse.Namespace) -> list[Row]:
    """A crowd of video jobs at once on the worker's threads."""
    from bench.fanout import measure_fanout

    assert st is not None
    return [
        measure_fanout(
            st.api, args.jobs, st.worker_threads, st.model_latency, auth, form=args.video_form
        )
    ]


def reads_rows(st: BenchStack | None, auth: dict[str, str], args: argparse.Namespace) -> list[Row]:
    """Reads and 304s of a finished job, beside bare Flask."""
    from bench.api import finished_job, measure_reads

    assert st is not None
    return measure_reads(st.api, st.bare, finished_job(st.api, auth), auth, 16, args.seconds)


def submissions_rows(
    st: BenchStack | None, auth: dict[str, str], args: argparse.Namespace
) -> list[Row]:
    """300 submissions from 8 clients while the workers run them, beside bare Flask."""
    from bench.submissions import measure_submissions

    assert st is not None
    return [measure_submissions(st.api, st.bare, auth, 300, 8, form=args.video_form)]


def streams_rows(
    st: BenchStack | None, auth: dict[str, str], args: argparse.Namespace
) -> list[Row]:
    """Open event streams on a job the fake holds running, reads beside them."""
    from bench.api import video_job
    from bench.stack import HOLD_TEXT
    from bench.streams import measure_streams

    assert st is not None
    job_id = video_job(st.api, auth, title_suffix=f" ({HOLD_TEXT})")
    try:
        return [measure_streams(st.api, st.events, job_id, auth, args.streams, 300)]
    finally:
        # Let the held job go, so the stack stops without waiting for its answer.
        httpx.post(f"{st.api}/api/v1/jobs/{job_id}/cancel", headers=auth, timeout=10)


def quota_rows(st: BenchStack | None, auth: dict[str, str], args: argparse.Namespace) -> list[Row]:
    """The Gemini quota, used whole and never exceeded (its own fake and Redis)."""
    from bench.quota import measure_quota

    return [measure_quota(80, 60, args.worker_threads, args.model_latency)]


def memo_rows(st: BenchStack | None, auth: dict[str, str], args: argparse.Namespace) -> list[Row]:
    """The same video from a crowd at once: model calls made (its own fake and Redis)."""
    from bench.memo import measure_memo

    return [measure_memo(args.visitors, args.model_latency)]


ON_STACK: dict[str, Measure] = {
    "latency": latency_rows,
    "fanout": fanout_rows,
    "reads": reads_rows,
    "submissions": submissions_rows,
    "streams": streams_rows,
}
ON_THEIR_OWN: dict[str, Measure] = {"quota": quota_rows, "memo": memo_rows}


def run(args: argparse.Namespace) -> list[Row]:
    """Start the stack if a chosen row needs it and measure the rows, in the table's order."""
    chosen = [name for name in ROWS if not args.only or name in args.only.split(",")]
    rows: list[Row] = []

    def measure(name: str, st: BenchStack | None, auth: dict[str, str]) -> None:
        started = time.monotonic()
        new = {**ON_STACK, **ON_THEIR_OWN}[name](st, auth, args)
        rows.extend(new)
        for row in new:
            print(f"  {row.what}: {row.measured} [{time.monotonic() - started:.0f} s]", flush=True)

    with tempfile.TemporaryDirectory(prefix="refract-bench-") as workdir:
        if any(name in ON_STACK for name in chosen):
            with bench_stack(
                Path(workdir),
                model_latency=args.model_latency,
                worker_threads=args.worker_threads,
                worker_processes=args.worker_processes,
            ) as st:
                auth = {"Authorization": f"Bearer {client_key(st.env)}"}
                print(f"stack up: API {st.api}, events {st.events}, bare Flask {st.bare}")
                for name in chosen:
                    if name in ON_STACK:
                        measure(name, st, auth)
        for name in chosen:
            if name in ON_THEIR_OWN:
                measure(name, None, {})
    return rows


def main() -> None:
    """Parse the arguments, run, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=None, help=f"comma-separated, from {','.join(ROWS)}")
    parser.add_argument("--model-latency", type=float, default=1.0)
    parser.add_argument("--worker-threads", type=int, default=24, help="in all")
    parser.add_argument(
        "--worker-processes", type=int, default=os.cpu_count() or 1, help="threads split over"
    )
    parser.add_argument("--runs", type=int, default=8, help="single jobs per kind, after one")
    parser.add_argument("--jobs", type=int, default=48, help="video jobs at once")
    parser.add_argument("--seconds", type=float, default=5.0, help="per read measure")
    parser.add_argument(
        "--video-form",
        choices=FORMS,
        default="link",
        help="video jobs as a YouTube link each (as from a booth) or the material inline",
    )
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--visitors", type=int, default=100, help="the same video at once")
    args = parser.parse_args()
    unknown = set(args.only.split(",")) - set(ROWS) if args.only else set()
    if unknown:
        parser.error(f"no such row: {', '.join(sorted(unknown))} (rows: {', '.join(ROWS)})")
    # The rows that run Refract's code in this process (quota, memo) log only trouble.
    configure_logging(Settings(log_level="WARNING"))
    print(machine())
    rows = run(args)
    print()
    print(machine())
    print(markdown(rows))


if __name__ == "__main__":
    main()
