"""Everything the one-command bench runs against, started and stopped by the bench.

A fake Gemini and a fake YouTube in processes of their own (so the bench's clients do
not share their interpreter), its own redis-server, a fresh Postgres database, ``refract
up`` (the API as gunicorn 2 workers x 16 threads, a Celery worker with
``worker_threads`` threads, beat), ``refract events`` (gevent, for event streams) and
the bare Flask baseline under the API's gunicorn shape. Everything binds 127.0.0.1 on
free ports; everything is stopped, and the database dropped, when the block ends.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.api import bare_flask
from launch.embedded import EmbeddedRedis
from tests.support.services import PostgresServer, free_port
from tests.support.stack import RefractStack, clean_environ

# A video job whose title holds this stays running while the streams row is measured:
# the fake answers its requests only after HOLD_S.
HOLD_TEXT = "refract-bench-hold-open"
HOLD_S = 40.0
# Comments per video on the fake YouTube: a page of what a booth's video gets.
YOUTUBE_COMMENTS = 40


@dataclass(frozen=True)
class BenchStack:
    """Where the running pieces answer."""

    api: str
    env: dict[str, str]
    events: str
    bare: str
    gemini: str
    model_latency: float
    worker_threads: int


@contextmanager
def fake_process(module: str, *args: str) -> Iterator[dict[str, str]]:
    """``python -m <module> <args>`` (a fake of ``tests.support.fakes``) in a child
    process, for the block; the settings it prints (``NAME=value`` lines up to an empty
    one) that point Refract at it."""
    process = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        stdout=subprocess.PIPE,
        text=True,
        env={**clean_environ(), "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        settings: dict[str, str] = {}
        while line := process.stdout.readline().strip():
            name, sep, value = line.partition("=")
            if not sep:
                raise RuntimeError(f"{module} did not start: {line!r}")
            settings[name] = value
        if not settings:
            raise RuntimeError(f"{module} did not start (exit code {process.poll()})")
        yield settings
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def fake_gemini_process(latency_s: float) -> AbstractContextManager[dict[str, str]]:
    """The fake Gemini answering after ``latency_s``, holding ``HOLD_TEXT``'s requests."""
    hold = f"{HOLD_TEXT}={HOLD_S}"
    return fake_process("tests.support.fakes.gemini", "--latency", str(latency_s), "--hold", hold)


def fake_youtube_process() -> AbstractContextManager[dict[str, str]]:
    """The fake YouTube, serving every well-formed video id (the crowd's links)."""
    return fake_process("tests.support.fakes.youtube", "--any-video", str(YOUTUBE_COMMENTS))


@contextmanager
def events_process(env: dict[str, str], workdir: Path) -> Iterator[str]:
    """``refract events`` (gevent) on a free port, with the stack's settings."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with (workdir / "events.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "launch.cli", "events", "--port", str(port)],
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                log_text = (workdir / "events.log").read_text(errors="replace")
                raise RuntimeError(f"refract events did not start:\n{log_text[-3000:]}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield url
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def stack_env(
    database_url: str, redis_url: str, fakes: dict[str, str], workdir: Path
) -> dict[str, str]:
    """The stack's whole configuration: Postgres, Redis, the Gemini SDK and YouTube's
    clients to the fakes (``fakes``: the settings they printed)."""
    return {
        **clean_environ(),
        **fakes,
        "PYTHONUNBUFFERED": "1",
        "REFRACT_DATABASE_URL": database_url,
        "REFRACT_REDIS_URL": redis_url,
        "REFRACT_MODEL_BACKEND": "gemini",
        "GEMINI_API_KEY": "bench-key",
        # youtube.com's caption endpoint cannot be pointed at a fake.
        "REFRACT_YOUTUBE_TRANSCRIPTS": "false",
        "REFRACT_MEDIA_DIR": str(workdir / "media"),
        # Keys on, as at an event: every request is authenticated and counted.
        "REFRACT_AUTH": "required",
        # Shared by the API and the events process, as every API process must share it.
        "REFRACT_SECRET_KEY": secrets.token_urlsafe(32),
        # Every job is measured for what it costs: identical inputs are not answered
        # from the reply cache here (its own row measures that).
        "REFRACT_REPLY_CACHE_TTL_S": "0",
        # The bench's one key reads and submits far more than a booth would: its rates
        # are counted as for any key, but never refused.
        "REFRACT_SUBMIT_RATE": "1000000/min",
        "REFRACT_READ_RATE": "10000000/min",
    }


@contextmanager
def bench_stack(
    workdir: Path, *, model_latency: float, worker_threads: int, worker_processes: int = 1
) -> Iterator[BenchStack]:
    """Start every piece (see the module's docstring) for the block."""
    with ExitStack() as stack:
        redis = stack.enter_context(EmbeddedRedis(workdir / "redis"))
        database_url = stack.enter_context(PostgresServer().fresh_database("refract_bench"))
        gemini = stack.enter_context(fake_gemini_process(model_latency))
        youtube = stack.enter_context(fake_youtube_process())
        env = stack_env(database_url, redis.url, {**gemini, **youtube}, workdir)
        # The worker threads split over one process per core: one GIL each.
        env["REFRACT_WORKER_PROCESSES"] = str(worker_processes)
        per_process = max(1, worker_threads // worker_processes)
        refract = RefractStack(
            env, workdir / "stack", extra_args=["--concurrency", str(per_process)]
        )
        stack.enter_context(refract)
        events = stack.enter_context(events_process(refract.env, workdir))
        bare = stack.enter_context(bare_flask(free_port(), 2, 16))
        yield BenchStack(
            api=refract.url,
            env=refract.env,
            events=events,
            bare=bare,
            gemini=gemini["REFRACT_GEMINI_BASE_URL"],
            model_latency=model_latency,
            worker_threads=worker_threads,
        )
