"""The Gemini backend and the shared quota together, against the fake Gemini and the
run's Redis: each call books its estimated tokens and settles what the answer says it
cost; a 429 that still comes (another client on the project) holds every worker off for
the server's RetryInfo delay."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis

from refract.core.material import ImageBlob, VideoMaterial
from refract.core.settings import Settings
from refract.gateway.gemini import GeminiBackend
from refract.gateway.limiter import Quota, RedisRateLimiter
from tests.support.fakes.gemini import FakeGemini, Reply
from tests.support.gemini import SleepRecorder

URL = "https://www.youtube.com/watch?v=9bZkp7q19f0"


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis[str]]:
    with redis.Redis.from_url(redis_url, decode_responses=True) as conn:
        yield conn


def quota_limiter(
    client: redis.Redis[str], settings: Settings, sleeps: Callable[[float], None]
) -> RedisRateLimiter:
    quotas = {
        settings.text_model: Quota(rpm=100, tpm=1_000_000),
        settings.image_model: Quota(rpm=100),
    }
    return RedisRateLimiter(
        client, quotas, key_prefix=f"test:quota:{uuid.uuid4().hex}", sleep=sleeps
    )


def test_a_call_books_its_estimate_and_settles_what_it_cost(
    make_settings: Callable[..., Settings],
    fake: FakeGemini,
    sleeps: SleepRecorder,
    client: redis.Redis[str],
) -> None:
    settings = make_settings()
    limiter = quota_limiter(client, settings, sleeps)
    backend = GeminiBackend(settings, limiter=limiter, sleep=sleeps)
    backend.summarize_video(VideoMaterial(url=URL, title="Gangnam Style"), language="en")
    backend.close()
    [member] = client.zrange(limiter.key(settings.text_model), 0, -1)
    # The fake reports a quarter of the request's bytes as its prompt tokens.
    reported = max(1, len(fake.requests[0].raw) // 4)
    assert member.endswith(f"|{reported}")


def test_a_429_holds_every_call_off_for_the_servers_delay(
    make_settings: Callable[..., Settings],
    fake: FakeGemini,
    client: redis.Redis[str],
) -> None:
    settings = make_settings()
    # Real sleeps: the hold-off runs on Redis's clock, which a fake sleep cannot move.
    limiter = quota_limiter(client, settings, time.sleep)
    backend = GeminiBackend(settings, limiter=limiter, sleep=time.sleep)
    fake.script(None, Reply.rate_limited(retry_delay="1s"))
    backend.summarize_video(VideoMaterial(url=URL), language="en")
    held_until = client.get(limiter.hold_key(settings.text_model))
    assert held_until is not None
    # Two bookings: the call Gemini refused, and its retry, booked after the hold-off.
    scores = [s for _, s in client.zrange(limiter.key(settings.text_model), 0, -1, withscores=True)]
    assert len(scores) == 2 and scores[1] >= int(held_until)
    # The image model has a quota of its own and is not held.
    assert limiter.book(settings.image_model, max_wait_s=0)[1] == 0
    backend.stylize_face(ImageBlob(b"img", "image/png"))
    backend.close()


def test_workers_sharing_the_limiter_never_meet_a_429(
    make_settings: Callable[..., Settings], fake: FakeGemini, redis_url: str
) -> None:
    # Gemini (the fake) allows 4 calls per 2 s per model; Refract is told the same. Eight
    # threads on two "processes" (own connections and backends) make 12 calls at once:
    # every call succeeds and not one is refused for quota.
    fake.quota = (4, 2.0)
    settings = make_settings()
    prefix = f"test:quota:{uuid.uuid4().hex}"
    connections = [redis.Redis.from_url(redis_url, decode_responses=True) for _ in range(2)]
    backends = [
        GeminiBackend(
            settings,
            limiter=RedisRateLimiter(
                conn,
                {settings.text_model: Quota(rpm=4)},
                key_prefix=prefix,
                window_s=2.0,
            ),
        )
        for conn in connections
    ]
    failures: list[BaseException] = []
    lock = threading.Lock()
    left = [12]

    def worker(n: int) -> None:
        while True:
            with lock:
                if left[0] == 0:
                    return
                left[0] -= 1
            try:
                backends[n % 2].summarize_video(VideoMaterial(url=URL), language="en")
            except BaseException as exc:  # reported below, with the others
                with lock:
                    failures.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for backend in backends:
        backend.close()
    for conn in connections:
        conn.close()
    assert failures == []
    assert fake.refused_for_quota == 0
    assert len(fake.requests_for(settings.text_model)) == 12
