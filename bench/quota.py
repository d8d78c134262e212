"""The Gemini quota row: does Refract use the whole quota, and never go over it?

One command, everything on 127.0.0.1 and started here: a fake Gemini that enforces a
requests-per-minute quota per model (429 RESOURCE_EXHAUSTED with RetryInfo past it, as
Gemini does), a throwaway redis-server, and two clients making the same calls:

- **Refract**: the real Gemini backend (google-genai SDK) behind the shared limiter told
  the same quota, called from a pool of worker threads as the Celery threads pool does;
- **booth-style**: the 2024 booth's way, a thread pool calling the SDK directly, each
  call once (a 429 loses that feature).

It prints, for each: wall time, the fastest schedule the quota allows (the first
``rpm`` calls at once, the next ``rpm`` one window later, ...), their ratio, the 429s
Gemini sent and the calls that failed. ``python -m bench.quota`` (about 65 s).
"""

from __future__ import annotations

import argparse
import math
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from google import genai
from google.genai import types

from bench.table import Row
from launch.embedded import EmbeddedRedis
from refract.core.material import VideoMaterial
from refract.core.settings import Settings
from refract.gateway.gemini import GeminiBackend
from refract.gateway.limiter import Quota, RedisRateLimiter
from refract.jobs.progress import redis_from_url
from tests.support.fakes.gemini import FakeGemini

MODEL = "gemini-2.5-flash"
URL = "https://www.youtube.com/watch?v=9bZkp7q19f0"


@dataclass
class Run:
    """What one client achieved."""

    name: str
    wall_s: float
    ideal_s: float
    refused: int
    failed: int

    @property
    def ratio(self) -> float:
        """The fastest schedule's time over the wall time (1.0: the whole quota used)."""
        return self.ideal_s / self.wall_s if self.wall_s else 0.0


def fastest_schedule_s(calls: int, rpm: int, window_s: float, latency_s: float) -> float:
    """When the last of ``calls`` can finish at the earliest under ``rpm`` per window."""
    windows = math.ceil(calls / rpm) - 1
    return windows * window_s + latency_s


def timed_calls(call: Callable[[], object], calls: int, threads: int) -> tuple[float, int]:
    """Make ``calls`` calls from ``threads`` threads: the wall time and how many failed."""
    failed = 0
    lock = threading.Lock()

    def one(_: int) -> None:
        nonlocal failed
        try:
            call()
        except Exception:  # a lost call (429, error): counted, as the booth lost them
            with lock:
                failed += 1

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(one, range(calls)))
    return time.monotonic() - started, failed


def run_refract(
    fake: FakeGemini, redis_url: str, calls: int, rpm: int, threads: int, latency_s: float
) -> Run:
    """The calls through Refract's backend and shared limiter."""
    settings = Settings(
        model_backend="gemini",
        gemini_api_key="bench-key",  # type: ignore[arg-type]
        gemini_base_url=fake.url,
        text_model=MODEL,
        gemini_rpm=rpm,
        model_timeout_s=120,
        model_max_retry_delay_s=120,
    )
    client = redis_from_url(redis_url)
    limiter = RedisRateLimiter(client, {MODEL: Quota(rpm=rpm)})
    backend = GeminiBackend(settings, limiter=limiter)
    wall, failed = timed_calls(
        lambda: backend.summarize_video(VideoMaterial(url=URL), language="en"), calls, threads
    )
    backend.close()
    client.close()
    ideal = fastest_schedule_s(calls, rpm, 60.0, latency_s)
    return Run("Refract (shared limiter)", wall, ideal, fake.refused_for_quota, failed)


def run_booth(fake: FakeGemini, calls: int, rpm: int, threads: int, latency_s: float) -> Run:
    """The calls as the booth made them: a thread pool, the SDK, one attempt each."""
    client = genai.Client(
        api_key="bench-key",
        http_options=types.HttpOptions(base_url=fake.url, api_version="v1beta", timeout=120_000),
    )
    wall, failed = timed_calls(
        lambda: client.models.generate_content(model=MODEL, contents=f"Summarise {URL}"),
        calls,
        threads,
    )
    client.close()
    ideal = fastest_schedule_s(calls, rpm, 60.0, latency_s)
    return Run("booth-style thread pool", wall, ideal, fake.refused_for_quota, failed)


def measure_both(calls: int, rpm: int, threads: int, latency_s: float) -> tuple[Run, Run]:
    """Refract's run and the booth's, each against its own fake Gemini, one Redis."""
    runs = []
    with tempfile.TemporaryDirectory() as workdir, EmbeddedRedis(Path(workdir)) as redis:
        for client in ("refract", "booth"):
            with FakeGemini() as fake:
                fake.latency_s = latency_s
                fake.quota = (rpm, 60.0)
                if client == "refract":
                    runs.append(run_refract(fake, redis.url, calls, rpm, threads, latency_s))
                else:
                    runs.append(run_booth(fake, calls, rpm, threads, latency_s))
    return runs[0], runs[1]


def measure_quota(calls: int = 80, rpm: int = 60, threads: int = 24, latency_s: float = 1.0) -> Row:
    """The quota row: fastest schedule ÷ wall and 429s, beside the booth's thread pool."""
    ours, booth = measure_both(calls, rpm, threads, latency_s)
    return Row(
        what=(
            f"quota: fake allows {rpm} calls per 60 s per model, Refract told {rpm} RPM, "
            f"{calls} calls: fastest schedule ÷ wall; 429s"
        ),
        measured=(
            f"{ours.ratio:.2f} ({ours.ideal_s:.1f} s ÷ {ours.wall_s:.1f} s); "
            f"{ours.refused} 429s, {ours.failed} calls lost"
        ),
        baseline=(
            f"booth thread pool: {booth.refused} 429s, {booth.failed} of {calls} calls lost "
            f"in {booth.wall_s:.1f} s"
        ),
        goal="≥ 0.95; 0",
        met=ours.ratio >= 0.95 and ours.refused == 0 and ours.failed == 0,
    )


def main() -> None:
    """Run both clients against their own fake Gemini and print the row."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=80)
    parser.add_argument("--rpm", type=int, default=60, help="the quota, and what Refract is told")
    parser.add_argument("--threads", type=int, default=24)
    parser.add_argument("--latency", type=float, default=1.0, help="seconds per answer")
    args = parser.parse_args()

    runs = measure_both(args.calls, args.rpm, args.threads, args.latency)
    print(
        f"quota: {args.rpm} calls per 60 s per model, {args.calls} calls, "
        f"{args.threads} threads, {args.latency:g} s per answer\n"
    )
    print("| client | wall | fastest schedule | ratio | 429s from Gemini | calls failed |")
    print("|---|---|---|---|---|---|")
    for run in runs:
        # A client that lost calls did less work than the schedule: no ratio to speak of.
        ratio = f"{run.ratio:.2f}" if run.failed == 0 else "n/a (calls lost)"
        print(
            f"| {run.name} | {run.wall_s:.1f} s | {run.ideal_s:.1f} s | {ratio} "
            f"| {run.refused} | {run.failed} |"
        )


if __name__ == "__main__":
    main()
