"""The integration layer: a real ``refract up`` (gunicorn + Celery worker + beat) against
real Postgres and Redis, with the real google-genai SDK talking to a fake Gemini."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from tests.fakes.gemini import FakeGemini
from tests.fakes.youtube import DEFAULT_KEY, FakeYouTube
from tests.support.services import fresh_postgres_database, fresh_redis_database
from tests.support.stack import RefractStack

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
FINAL = {"succeeded", "partial", "failed", "canceled"}


@pytest.fixture(scope="module")
def fake_gemini() -> Iterator[FakeGemini]:
    """A fake Gemini on 127.0.0.1 for the whole module."""
    with FakeGemini() as fake:
        yield fake


@pytest.fixture(scope="module")
def fake_youtube() -> Iterator[FakeYouTube]:
    """A fake YouTube (Data API, oEmbed, thumbnails) on 127.0.0.1 for the whole module."""
    with FakeYouTube() as fake:
        yield fake


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    """A fresh, empty Postgres database (``refract up`` migrates it)."""
    with fresh_postgres_database("refract_it") as url:
        yield url


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    fake_gemini: FakeGemini,
    fake_youtube: FakeYouTube,
    database_url: str,
) -> Iterator[RefractStack]:
    """``refract up`` with Gemini and YouTube pointed at the fakes."""
    with fresh_redis_database(10) as redis_url:
        workdir = tmp_path_factory.mktemp("stack")
        env = {
            "REFRACT_DATABASE_URL": database_url,
            "REFRACT_REDIS_URL": redis_url,
            "REFRACT_MODEL_BACKEND": "gemini",
            "GEMINI_API_KEY": "test-key",
            "REFRACT_GEMINI_BASE_URL": fake_gemini.url,
            "REFRACT_MEDIA_DIR": str(workdir / "media"),
            "REFRACT_MODEL_TIMEOUT_S": "2",
            "REFRACT_IMAGE_MODEL_TIMEOUT_S": "5",
            "REFRACT_MODEL_MAX_ATTEMPTS": "3",
            "REFRACT_MODEL_BACKOFF_BASE_S": "0.05",
            "REFRACT_MODEL_BACKOFF_MAX_S": "0.2",
            "REFRACT_RECONCILE_INTERVAL_S": "1",
            "REFRACT_REQUEUE_AFTER_S": "3",
            "REFRACT_GEMINI_RPM": "0",
            "YOUTUBE_API_KEY": DEFAULT_KEY,
            "REFRACT_YOUTUBE_API_URL": fake_youtube.api_url,
            "REFRACT_YOUTUBE_OEMBED_URL": fake_youtube.oembed_url,
            "REFRACT_YOUTUBE_THUMBNAIL_URL": fake_youtube.thumbnail_url,
            "REFRACT_YOUTUBE_TIMEOUT_S": "3",
            "REFRACT_YOUTUBE_TRANSCRIPTS": "false",
        }
        with RefractStack(env, workdir) as running:
            yield running


@pytest.fixture(scope="module")
def client(stack: RefractStack) -> Iterator[httpx.Client]:
    """An HTTP client for the stack's API."""
    with stack.client() as http:
        yield http


@pytest.fixture(scope="module")
def db(database_url: str) -> Iterator[Engine]:
    """A direct connection to the stack's database, to check what was stored."""
    engine = create_engine(database_url)
    yield engine
    engine.dispose()


def wait_for_job(client: httpx.Client, job_id: str, timeout_s: float = 60) -> dict[str, Any]:
    """Poll the job until it is final and return it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = client.get(f"/api/v1/jobs/{job_id}").json()
        if job["status"] in FINAL:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} not final after {timeout_s}s: {job}")


@pytest.fixture
def submit_video(client: httpx.Client) -> Callable[..., dict[str, Any]]:
    """Submit a video job with an inline source and return the created job."""

    def submit(source: dict[str, Any], **fields: Any) -> dict[str, Any]:
        response = client.post("/api/v1/jobs", json={"kind": "video", "source": source, **fields})
        assert response.status_code == 202, response.text
        return response.json()

    return submit


def feature_rows(db: Engine, job_id: str) -> dict[str, dict[str, Any]]:
    """The feature_runs rows of a job, straight from Postgres."""
    with db.connect() as conn:
        rows = conn.execute(
            text("SELECT * FROM feature_runs WHERE job_id = :id"), {"id": job_id}
        ).mappings()
        return {row["feature"]: dict(row) for row in rows}
