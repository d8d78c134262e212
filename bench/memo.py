"""The same video from a crowd: how many model calls it costs (the reply memo).

A hundred visitors paste the same link at once. Through Refract's Gemini backend behind
the reply memo (:mod:`refract.gateway.memo`, shared through Redis), every visitor's
``summary`` is asked for at the same moment from its own thread; the fake Gemini counts
what reached it. The baseline is the same crowd without the memo (every visitor a call,
as the booth made them). Starts its own fake Gemini and redis-server:

    python -m bench.memo --visitors 100 --latency 1.0
"""

from __future__ import annotations

import argparse
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.table import Row, markdown
from launch.embedded import EmbeddedRedis
from refract.core.material import VideoMaterial
from refract.core.settings import Settings
from refract.gateway.base import ModelBackend
from refract.gateway.gemini import GeminiBackend
from refract.gateway.memo import ReplyMemo
from refract.jobs.progress import redis_from_url
from tests.support.fakes.gemini import FakeGemini

MODEL = "gemini-2.5-flash"
VIDEO = VideoMaterial(
    url="https://www.youtube.com/watch?v=9bZkp7q19f0",
    title="How to Brew Better Coffee at Home",
)


def crowd(backend: ModelBackend, visitors: int) -> tuple[float, int]:
    """Every visitor asks for the summary at once: wall time and replies marked reused."""

    def one(_: int) -> bool:
        reply = backend.summarize_video(VIDEO, language="en")
        return bool(reply.data.get("cached"))

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=visitors) as pool:
        reused = sum(pool.map(one, range(visitors)))
    return time.monotonic() - started, reused


def run_crowd(visitors: int, latency_s: float, *, memo: bool) -> tuple[float, int, int]:
    """The crowd against its own fake: wall, model calls made, replies reused."""
    with tempfile.TemporaryDirectory() as workdir, EmbeddedRedis(Path(workdir)) as redis:
        client = redis_from_url(redis.url)
        with FakeGemini() as fake:
            fake.latency_s = latency_s
            settings = Settings(
                model_backend="gemini",
                gemini_api_key="bench-key",  # type: ignore[arg-type]
                gemini_base_url=fake.url,
                text_model=MODEL,
                gemini_rpm=0,
            )
            gemini = GeminiBackend(settings)
            backend: ModelBackend = (
                ReplyMemo(gemini, client, model=MODEL, ttl_s=3600) if memo else gemini
            )
            wall, reused = crowd(backend, visitors)
            gemini.close()
            calls = len(fake.requests)
        client.close()
    return wall, calls, reused


def measure_memo(visitors: int = 100, latency_s: float = 1.0) -> Row:
    """The memo row: one model call for the crowd, beside the crowd without the memo."""
    wall, calls, reused = run_crowd(visitors, latency_s, memo=True)
    bare_wall, bare_calls, _ = run_crowd(visitors, latency_s, memo=False)
    return Row(
        what=f"the same video pasted by {visitors} visitors at once: `summary` model calls",
        measured=f"{calls} call, {reused} replies reused, all answered in {wall:.1f} s",
        baseline=f"without the memo: {bare_calls} calls in {bare_wall:.1f} s",
        goal="1",
        met=calls == 1 and reused == visitors - 1,
    )


def main() -> None:
    """Measure and print the row."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--visitors", type=int, default=100)
    parser.add_argument("--latency", type=float, default=1.0, help="seconds per answer")
    args = parser.parse_args()
    print(markdown([measure_memo(args.visitors, args.latency)]))


if __name__ == "__main__":
    main()
