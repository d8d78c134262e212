"""The critical path of one job alone: submit to final, against the model's own time.

A video job's three calls run in parallel, so with a model that takes ``L`` seconds it
cannot finish in under ``L``; a photo card's ``card`` waits for ``caption`` and
``stylize``, so ``2 L``. Everything above that is Refract's own overhead. For each run
this submits one job, follows its event stream until the final ``job`` event (no polling
delay in the measure), then reads the job's timestamps to say where the time went:

- *to pickup*: from the job's creation to the first feature's start (enqueue, broker,
  worker, claim);
- *feature overhead*: a feature's run time less the model's latency (claim, progress
  reports, storing the outcome);
- *to final*: from the last feature's end to the final event reaching the client.

A video job is a YouTube link (a new video each run), as a booth sends it, or with
``--form source`` the video's material inline (see :mod:`bench.videos`). Against a
running stack whose Gemini is the fake with a known latency (and whose YouTube knows
the links):

    python -m tests.support.fakes.gemini --latency 1.0     # prints REFRACT_GEMINI_BASE_URL
    REFRACT_GEMINI_BASE_URL=... GEMINI_API_KEY=x refract up --port 8000 &
    python -m bench.latency --api http://127.0.0.1:8000 --model-latency 1.0 --runs 3
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from bench.table import Row
from bench.videos import FORMS, video_bodies
from launch.client import events

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _at(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def one_job(http: httpx.Client, kind: str, form: str = "link") -> dict[str, Any]:
    """Submit one job (a video job of ``form``), follow it to its final event; timings
    in seconds."""
    body = video_bodies(1, form)[0]
    started = time.perf_counter()
    if kind == "video":
        response = http.post("/api/v1/jobs", json=body)
    else:
        photo = (EXAMPLES / "astronaut.png").read_bytes()
        response = http.post(
            "/api/v1/jobs",
            data={"kind": "photocard"},
            files={"photo": ("astronaut.png", photo, "image/png")},
        )
    response.raise_for_status()
    submitted = time.perf_counter()
    job = response.json()
    for _id, name, data in events(http, job["id"], None):
        if name == "job" and data.get("final"):
            break
    final = time.perf_counter()
    done = http.get(f"/api/v1/jobs/{job['id']}").json()
    features = done["features"].values()
    starts = [at for f in features if (at := _at(f["started_at"]))]
    ends = [at for f in features if (at := _at(f["finished_at"]))]
    runs = {
        name: seconds
        for name, f in done["features"].items()
        if (seconds := _between(f["started_at"], f["finished_at"])) is not None
    }
    created, job_done = _at(done["created_at"]), _at(done["finished_at"])
    return {
        "status": done["status"],
        "submit_s": submitted - started,
        "total_s": final - started,
        "to_pickup_s": (min(starts) - created).total_seconds() if starts and created else 0.0,
        "runs_s": runs,
        "to_final_s": (job_done - max(ends)).total_seconds() if job_done and ends else 0.0,
    }


def _between(start: str | None, end: str | None) -> float | None:
    first, last = _at(start), _at(end)
    return (last - first).total_seconds() if first and last else None


def measure_latency(
    api: str,
    kind: str,
    runs: int,
    model_latency: float,
    auth: dict[str, str],
    form: str = "link",
) -> Row:
    """The row for one ``kind`` ("video" or "photo") job alone: submit to final ÷ its
    floor (one model latency for a video, two for a photo card), over ``runs`` runs after
    a first one that warms the path up and is not counted; met on the median. A video
    job is of ``form`` (see :mod:`bench.videos`)."""
    floor = model_latency * (1 if kind == "video" else 2)
    ratios: list[float] = []
    parts: list[dict[str, Any]] = []
    with httpx.Client(base_url=api, headers=auth, timeout=60) as http:
        one_job(http, kind, form)  # the warm-up: first connections, first imports, caches
        for _ in range(runs):
            seen = one_job(http, kind, form)
            ratios.append(seen["total_s"] / floor)
            parts.append(seen)
    median = statistics.median(ratios)
    submit_ms = statistics.median(seen["submit_s"] for seen in parts) * 1000
    pickup_ms = statistics.median(seen["to_pickup_s"] for seen in parts) * 1000
    overhead_ms = (
        statistics.median(
            seconds - model_latency for seen in parts for seconds in seen["runs_s"].values()
        )
        * 1000
    )
    what = (
        f"one video job alone, submit → final ÷ {floor:g} s (its three calls run in parallel)"
        if kind == "video"
        else f"one photo card alone ÷ {floor:g} s (`card` waits for `caption` and `stylize`)"
    )
    return Row(
        what=what,
        measured=(
            f"{median:.2f} median, {min(ratios):.2f}-{max(ratios):.2f} over {runs} runs "
            f"(submit {submit_ms:.0f} ms, to pickup {pickup_ms:.0f} ms, "
            f"a feature's own overhead {overhead_ms:.0f} ms, medians)"
        ),
        baseline=f"floor {floor:g} s: the model's own time",
        goal="≤ 1.05",
        met=median <= 1.05,
    )


def main() -> None:
    """Run the jobs one after the other and print each one's path."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--api", required=True)
    parser.add_argument("--key", default=None)
    parser.add_argument("--kind", choices=["video", "photo"], default="video")
    parser.add_argument("--form", choices=FORMS, default="link", help="what a video job carries")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--model-latency", type=float, default=1.0)
    args = parser.parse_args()
    headers = {"Authorization": f"Bearer {args.key}"} if args.key else {}
    # The floor: a video's calls run side by side; a card waits for two calls, then one.
    floor = args.model_latency * (1 if args.kind == "video" else 2)
    totals = []
    with httpx.Client(base_url=args.api, headers=headers, timeout=60) as http:
        for n in range(args.runs):
            seen = one_job(http, args.kind, args.form)
            totals.append(seen["total_s"])
            runs = ", ".join(
                f"{name} {seconds:.3f}s (+{seconds - args.model_latency:.3f})"
                for name, seconds in seen["runs_s"].items()
            )
            ratio = seen["total_s"] / floor
            print(
                f"run {n + 1}: {seen['status']} in {seen['total_s']:.3f}s (÷ floor {ratio:.2f}); "
                f"submit {seen['submit_s'] * 1000:.0f} ms, to pickup {seen['to_pickup_s']:.3f}s, "
                f"runs: {runs}; last end to job final {seen['to_final_s']:.3f}s"
            )
    print(
        f"\n{args.kind} job alone, submit to final ÷ {floor:g} s: "
        + ", ".join(f"{t / floor:.2f}" for t in totals)
        + f" (median {statistics.median(totals) / floor:.2f})"
    )


if __name__ == "__main__":
    main()
