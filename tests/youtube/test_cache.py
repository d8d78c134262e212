"""The Redis cache in front of YouTube (the run's real Redis): one fetch per video and kind."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from refract.core.errors import FeatureError
from refract.core.material import TranscriptLine
from refract.core.settings import Settings
from refract.youtube.cache import MaterialCache, YouTubeMaterial, quota_day
from tests.support.fakes.youtube import FakeYouTube, make_comments
from tests.support.services import free_port
from tests.support.youtube import VIDEO, TranscriptCalls

MaterialFactory = Callable[..., YouTubeMaterial]


@pytest.fixture
def material(
    make_settings: Callable[..., Settings], redis_client: redis.Redis[str]
) -> Iterator[MaterialFactory]:
    """Build YouTubeMaterial objects (one per simulated worker); all closed afterwards."""
    with ExitStack() as stack:

        def build(
            client: redis.Redis[str] | None = redis_client, **overrides: object
        ) -> YouTubeMaterial:
            return stack.enter_context(YouTubeMaterial(make_settings(**overrides), client))

        yield build


def code_of(call: Callable[[], object]) -> str:
    with pytest.raises(FeatureError) as info:
        call()
    return info.value.code


def test_metadata_is_fetched_once(
    fake: FakeYouTube, material: MaterialFactory, redis_client: redis.Redis[str]
) -> None:
    fake.add_video(VIDEO, title="Cached title")
    first = material().metadata(VIDEO)
    second = material().metadata(VIDEO)  # another worker, same Redis
    assert first.title == second.title == "Cached title"
    assert (first.quota_units, second.quota_units) == (1, 0)
    assert len(fake.requests) == 1
    assert 3590 < redis_client.ttl(f"refract:yt:{VIDEO}:metadata") <= 3600


def test_comments_are_fetched_once_and_quota_is_counted(
    fake: FakeYouTube, material: MaterialFactory, redis_client: redis.Redis[str]
) -> None:
    fake.add_video(VIDEO, comments=make_comments(250))
    youtube = material()
    first = youtube.comments(VIDEO)
    again = youtube.comments(VIDEO)
    assert len(first.comments) == 250 and again.comments == first.comments
    assert (first.quota_units, again.quota_units, again.pages) == (3, 0, 3)
    assert len(fake.requests) == 3
    youtube.metadata(VIDEO)
    assert youtube.quota_used() == 4
    assert redis_client.get(f"refract:yt:quota:{quota_day().isoformat()}") == "4"
    assert redis_client.ttl(youtube.quota_key()) > 7 * 86400


def test_thumbnail_bytes_survive_the_cache(
    fake: FakeYouTube, material: MaterialFactory, redis_client: redis.Redis[str], redis_url: str
) -> None:
    fake.add_video(VIDEO, thumbnails=("sddefault",))
    first = material().thumbnail(VIDEO)
    # A client without decode_responses reads the same entry as bytes.
    raw_client = redis.Redis.from_url(redis_url)
    try:
        second = material(client=raw_client).thumbnail(VIDEO)
    finally:
        raw_client.close()
    assert second == first
    assert (second.size_name, second.width, second.height) == ("sddefault", 640, 480)
    assert len(fake.requests) == 2  # maxresdefault missing, then sddefault; once


def test_concurrent_jobs_share_one_fetch(fake: FakeYouTube, material: MaterialFactory) -> None:
    fake.add_video(VIDEO, title="Trending", comments=make_comments(40))
    fake.delay_s = 0.3  # every caller arrives while the first fetch is in flight
    workers = [material() for _ in range(20)]
    start = threading.Barrier(len(workers))

    def job(youtube: YouTubeMaterial) -> tuple[str, int]:
        start.wait()
        return youtube.metadata(VIDEO).title, len(youtube.comments(VIDEO).comments)

    with ThreadPoolExecutor(len(workers)) as pool:
        results = list(pool.map(job, workers))
    assert results == [("Trending", 40)] * 20
    assert len(fake.requests_to("/videos")) == 1
    assert len(fake.requests_to("/commentThreads")) == 1
    assert sum(w.quota_units_spent for w in workers) == 2


def test_waiters_share_a_transient_failure_but_it_is_not_cached(
    fake: FakeYouTube, material: MaterialFactory, redis_client: redis.Redis[str]
) -> None:
    fake.add_video(VIDEO)
    fake.server_error = 503
    fake.delay_s = 0.3
    workers = [material() for _ in range(10)]
    start = threading.Barrier(len(workers))

    def job(youtube: YouTubeMaterial) -> str:
        start.wait()
        return code_of(lambda: youtube.metadata(VIDEO))

    with ThreadPoolExecutor(len(workers)) as pool:
        codes = list(pool.map(job, workers))
    assert codes == ["youtube_unreachable"] * 10
    assert len(fake.requests) == 1
    assert redis_client.get(f"refract:yt:{VIDEO}:metadata") is None
    fake.server_error = None
    fake.delay_s = 0.0
    assert material().metadata(VIDEO).title == "A fake video"
    assert len(fake.requests) == 2


def test_a_permanent_error_is_cached_briefly(
    fake: FakeYouTube, material: MaterialFactory, redis_client: redis.Redis[str]
) -> None:
    fake.add_video(VIDEO, comments_disabled=True)
    youtube = material()
    assert code_of(lambda: youtube.comments(VIDEO)) == "comments_disabled"
    assert code_of(lambda: material().comments(VIDEO)) == "comments_disabled"
    assert len(fake.requests) == 1
    assert 0 < redis_client.ttl(f"refract:yt:{VIDEO}:comments:300") <= 60
    assert youtube.quota_used() == 1  # a refused request still costs a unit


@pytest.mark.parametrize(
    "setup",
    [
        lambda f: setattr(f, "quota_exceeded", True),
        lambda f: setattr(f, "valid_keys", set()),
        lambda f: setattr(f, "server_error", 500),
    ],
)
def test_transient_and_config_errors_are_not_cached(
    fake: FakeYouTube,
    material: MaterialFactory,
    redis_client: redis.Redis[str],
    setup: Callable[[FakeYouTube], object],
) -> None:
    fake.add_video(VIDEO, comments=["hi"])
    setup(fake)
    youtube = material()
    first = code_of(lambda: youtube.comments(VIDEO))
    assert code_of(lambda: youtube.comments(VIDEO)) == first
    assert len(fake.requests) == 2
    assert redis_client.get(f"refract:yt:{VIDEO}:comments:300") is None


def test_ttl_zero_disables_the_cache(
    fake: FakeYouTube, material: MaterialFactory, redis_client: redis.Redis[str]
) -> None:
    fake.add_video(VIDEO, comments_disabled=True)
    youtube = material(youtube_cache_ttl_s=0)
    youtube.metadata(VIDEO)
    youtube.metadata(VIDEO)
    assert code_of(lambda: youtube.comments(VIDEO)) == "comments_disabled"
    assert code_of(lambda: youtube.comments(VIDEO)) == "comments_disabled"
    assert len(fake.requests) == 4
    assert [k for k in redis_client.keys("refract:yt:*") if ":quota:" not in k] == []


def test_a_dead_lock_holder_does_not_block_for_long(
    fake: FakeYouTube, material: MaterialFactory, redis_client: redis.Redis[str]
) -> None:
    fake.add_video(VIDEO, title="After the lock expired")
    # A worker that took the lock and died: its lock expires on its own.
    redis_client.set(f"refract:yt:{VIDEO}:metadata:lock", "dead-worker", px=300)
    assert material().metadata(VIDEO).title == "After the lock expired"
    assert len(fake.requests) == 1


def test_a_waiter_looks_again_soon_then_less_often(redis_client: redis.Redis[str]) -> None:
    # Another job holds the fetch lock; the waiter's pauses are recorded, not slept, and
    # the holder lets go during the sixth: the waiter then takes the lock and fetches.
    lock_key = f"refract:yt:{VIDEO}:metadata:lock"
    redis_client.set(lock_key, "another-job", px=30_000)
    pauses: list[float] = []

    def pause(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 6:
            redis_client.delete(lock_key)

    cache = MaterialCache(redis_client, 60, first_poll_s=0.004, poll_s=0.05, sleep=pause)
    fetched = cache.get_or_fetch(VIDEO, "metadata", lambda: "fetched", encode=str, decode=str)
    assert fetched == "fetched"
    assert pauses == [0.004, 0.008, 0.016, 0.032, 0.05, 0.05]


def test_redis_down_means_fetching_directly(fake: FakeYouTube, material: MaterialFactory) -> None:
    fake.add_video(VIDEO)
    # No retries: redis-py's default backoff would only make the test slow.
    down = redis.Redis(
        port=free_port(),
        socket_connect_timeout=0.2,
        retry=Retry(NoBackoff(), 0),
        decode_responses=True,
    )
    youtube = material(client=down)
    assert youtube.metadata(VIDEO).title == "A fake video"
    assert youtube.metadata(VIDEO).title == "A fake video"
    assert len(fake.requests) == 2
    assert youtube.quota_units_spent == 2


def test_transcripts_are_cached_and_a_missing_one_briefly(
    fake: FakeYouTube,
    material: MaterialFactory,
    redis_client: redis.Redis[str],
    transcripts: TranscriptCalls,
) -> None:
    youtube = material()
    assert youtube.transcript(VIDEO) is None  # the library refused
    assert youtube.transcript(VIDEO) is None
    assert len(transcripts.calls) == 1
    assert 0 < redis_client.ttl(f"refract:yt:{VIDEO}:transcript:en") <= 60

    transcripts.lines = [TranscriptLine(0.5, "안녕하세요"), TranscriptLine(3.0, "hello")]
    assert youtube.transcript(VIDEO, ("ko", "en")) == transcripts.lines
    assert youtube.transcript(VIDEO, ("ko", "en")) == transcripts.lines
    assert len(transcripts.calls) == 2
    assert redis_client.ttl(f"refract:yt:{VIDEO}:transcript:ko,en") > 60
    assert fake.requests == []


def test_an_unreadable_entry_is_fetched_over(
    fake: FakeYouTube, material: MaterialFactory, redis_client: redis.Redis[str]
) -> None:
    fake.add_video(VIDEO, title="Fresh")
    key = f"refract:yt:{VIDEO}:metadata"
    redis_client.set(key, '{"ok": {"title": "old shape", "unknown_field": 1}}')
    assert material().metadata(VIDEO).title == "Fresh"
    assert len(fake.requests) == 1
    assert material().metadata(VIDEO).title == "Fresh"
    assert len(fake.requests) == 1
