"""The reply memo around the Gemini backend, against the fake Gemini and the run's Redis:
identical inputs cost one call (also when many callers ask at once), anything that
differs (language, material, prompt version) is a new call, failures are never reused,
and a follower never waits on a leader that failed or died."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from refract.core import deadline, interrupt
from refract.core.errors import Canceled, FeatureError
from refract.core.material import Comment, ImageBlob, VideoMaterial
from refract.core.settings import Settings
from refract.gateway import memo as memo_module
from refract.gateway.gemini import GeminiBackend
from refract.gateway.memo import LOCK_KEY, REPLY_KEY, ReplyMemo, material_digest, reply_key
from refract.gateway.prompts import Prompt, load_prompt
from tasks.services import worker_backend
from tests.support.fakes.gemini import FakeGemini, Reply
from tests.support.gemini import SleepRecorder

URL = "https://www.youtube.com/watch?v=9bZkp7q19f0"
VIDEO = VideoMaterial(
    url=URL,
    video_id="9bZkp7q19f0",
    title="Gangnam Style",
    comments=(Comment("the horse dance!", likes=9), Comment("classic", likes=2)),
)
TTL_S = 600


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis[str]]:
    with redis.Redis.from_url(redis_url, decode_responses=True) as conn:
        yield conn


@pytest.fixture
def gemini(
    make_settings: Callable[..., Settings], sleeps: SleepRecorder
) -> Iterator[GeminiBackend]:
    backend = GeminiBackend(make_settings(), sleep=sleeps)
    yield backend
    backend.close()


@pytest.fixture
def memo(gemini: GeminiBackend, client: redis.Redis[str]) -> ReplyMemo:
    return ReplyMemo(gemini, client, model=gemini.settings.text_model, ttl_s=TTL_S)


def summary_key(memo: ReplyMemo, video: VideoMaterial, language: str = "en") -> str:
    """The digest the memo files ``summary`` of ``video`` under."""
    version = load_prompt("summary").version
    return reply_key(memo.name, memo._model, "summary", version, language, material_digest(video))


def test_the_same_video_twice_costs_one_call_and_the_second_is_marked_reused(
    memo: ReplyMemo, fake: FakeGemini, client: redis.Redis[str]
) -> None:
    first = memo.summarize_video(VIDEO, language="en")
    # The task adds its own fields to the reply it got: the stored one must not change.
    first.data["video"] = {"title": "added by the task"}
    second = memo.summarize_video(VIDEO, language="en")

    assert len(fake.requests) == 1
    assert "cached" not in first.data and second.data["cached"] is True
    assert "video" not in second.data
    assert {k: v for k, v in second.data.items() if k != "cached"} == {
        k: v for k, v in first.data.items() if k != "video"
    }
    assert (second.model, second.prompt_version, second.backend) == (
        first.model,
        first.prompt_version,
        "gemini",
    )
    # Spent once: the reused reply records no new tokens (the first one did).
    assert first.usage.input_tokens and first.usage.input_tokens > 0
    assert (second.usage.input_tokens, second.usage.output_tokens) == (0, 0)
    stored = REPLY_KEY.format(digest=summary_key(memo, VIDEO))
    assert 0 < client.ttl(stored) <= TTL_S
    assert not client.exists(LOCK_KEY.format(digest=summary_key(memo, VIDEO)))


def test_each_feature_of_a_video_is_reused_on_its_own(memo: ReplyMemo, fake: FakeGemini) -> None:
    thumbnail = ImageBlob(b"\x89PNG fake thumbnail bytes", "image/png")
    for _ in range(2):
        memo.summarize_video(VIDEO, language="en")
        memo.analyze_comments(VIDEO, language="en")
    first = memo.analyze_thumbnail(thumbnail, title=VIDEO.title, language="en")
    again = memo.analyze_thumbnail(thumbnail, title=VIDEO.title, language="en")
    assert len(fake.requests) == 3
    assert "cached" not in first.data and again.data["cached"] is True


def test_a_different_language_material_or_prompt_version_is_a_new_call(
    memo: ReplyMemo, fake: FakeGemini, monkeypatch: pytest.MonkeyPatch
) -> None:
    memo.summarize_video(VIDEO, language="en")
    memo.summarize_video(VIDEO, language="de")
    # New comments fetched for the same video are new material.
    memo.summarize_video(dataclasses.replace(VIDEO, comments=()), language="en")
    assert len(fake.requests) == 3

    current = load_prompt("summary")
    newer = Prompt(current.feature, "summary.v999", current.system, current.user)
    monkeypatch.setattr(memo_module, "load_prompt", lambda feature: newer)
    memo.summarize_video(VIDEO, language="en")
    assert len(fake.requests) == 4


def test_a_failed_reply_is_not_reused(memo: ReplyMemo, fake: FakeGemini) -> None:
    # Every attempt fails (model_max_attempts is 3 here): the feature fails.
    fake.script(None, *[Reply.server_error(500) for _ in range(3)])
    with pytest.raises(FeatureError):
        memo.summarize_video(VIDEO, language="en")
    failed_calls = len(fake.requests)

    reply = memo.summarize_video(VIDEO, language="en")
    assert "cached" not in reply.data
    assert len(fake.requests) == failed_calls + 1
    assert memo.summarize_video(VIDEO, language="en").data["cached"] is True
    assert len(fake.requests) == failed_calls + 1


def test_many_callers_at_once_send_one_call(memo: ReplyMemo, fake: FakeGemini) -> None:
    fake.latency_s = 0.5  # the leader is still working while the others arrive
    replies: list[Any] = []
    errors: list[BaseException] = []

    def ask() -> None:
        try:
            replies.append(memo.summarize_video(VIDEO, language="en"))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    assert len(fake.requests) == 1
    assert sorted(bool(r.data.get("cached")) for r in replies) == [False] + [True] * 7


def test_when_the_leader_fails_the_followers_call_themselves(
    memo: ReplyMemo, fake: FakeGemini
) -> None:
    fake.latency_s = 0.3
    fake.script(None, *[Reply.server_error(500) for _ in range(3)])
    outcomes: list[str] = []
    lock = threading.Lock()

    def ask() -> None:
        try:
            memo.summarize_video(VIDEO, language="en")
            result = "ok"
        except FeatureError as exc:
            result = exc.code
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    # Only the leader saw the failing answers; every other caller got a reply.
    assert len(outcomes) == 4
    assert outcomes.count("ok") == 3


def test_a_follower_takes_over_from_a_leader_that_died(
    gemini: GeminiBackend, client: redis.Redis[str], fake: FakeGemini
) -> None:
    memo = ReplyMemo(gemini, client, model=gemini.settings.text_model, ttl_s=TTL_S, lease_s=0.3)
    # A lock nobody renews: its holder died mid-call.
    client.set(LOCK_KEY.format(digest=summary_key(memo, VIDEO)), "dead-worker", px=300)
    reply = memo.summarize_video(VIDEO, language="en")
    assert "cached" not in reply.data
    assert len(fake.requests) == 1
    assert memo.summarize_video(VIDEO, language="en").data["cached"] is True


def test_a_leaders_lease_is_renewed_while_its_call_runs(
    gemini: GeminiBackend, client: redis.Redis[str], fake: FakeGemini
) -> None:
    memo = ReplyMemo(gemini, client, model=gemini.settings.text_model, ttl_s=TTL_S, lease_s=0.2)
    fake.latency_s = 1.5  # many leases long, within the 2 s model timeout
    lock = LOCK_KEY.format(digest=summary_key(memo, VIDEO))
    seen: list[bool] = []
    leader = threading.Thread(target=lambda: memo.summarize_video(VIDEO, language="en"))
    leader.start()
    fake.wait_for_requests(1)
    time.sleep(0.6)  # past three unrenewed leases: only renewal keeps the lock
    seen.append(bool(client.exists(lock)))
    leader.join(30)
    # Still held well after the first lease ran out, then freed with the reply stored.
    assert seen == [True]
    assert not client.exists(lock)
    assert len(fake.requests) == 1


def test_a_follower_waits_no_longer_than_its_deadline(
    memo: ReplyMemo, client: redis.Redis[str], fake: FakeGemini
) -> None:
    client.set(LOCK_KEY.format(digest=summary_key(memo, VIDEO)), "busy-leader", ex=60)
    with pytest.raises(FeatureError) as failure, deadline.within(0.3):
        memo.summarize_video(VIDEO, language="en")
    assert failure.value.code == "deadline_exceeded"
    assert fake.requests == []


def test_a_canceled_follower_stops_waiting(
    memo: ReplyMemo, client: redis.Redis[str], fake: FakeGemini
) -> None:
    client.set(LOCK_KEY.format(digest=summary_key(memo, VIDEO)), "busy-leader", ex=60)
    with pytest.raises(Canceled), interrupt.watching(lambda: True):
        memo.summarize_video(VIDEO, language="en")
    assert fake.requests == []


def test_without_redis_every_call_goes_to_the_model(
    gemini: GeminiBackend, fake: FakeGemini
) -> None:
    down = redis.Redis(port=1, socket_connect_timeout=0.2, decode_responses=True)
    memo = ReplyMemo(gemini, down, model=gemini.settings.text_model, ttl_s=TTL_S)
    memo.summarize_video(VIDEO, language="en")
    memo.summarize_video(VIDEO, language="en")
    assert len(fake.requests) == 2


def test_image_features_are_generated_every_time(
    memo: ReplyMemo, fake: FakeGemini, face: ImageBlob
) -> None:
    memo.stylize_face(face)
    memo.stylize_face(face)
    assert len(fake.requests) == 2
    assert memo.name == "gemini"


def test_the_worker_puts_gemini_behind_the_memo_unless_it_is_off(
    make_settings: Callable[..., Settings], client: redis.Redis[str]
) -> None:
    memoized = worker_backend(make_settings(), client)
    assert isinstance(memoized, ReplyMemo) and memoized.name == "gemini"
    memoized.close()  # the wrapped backend's own methods stay reachable
    bare = worker_backend(make_settings(reply_cache_ttl_s=0), client)
    assert isinstance(bare, GeminiBackend)
    bare.close()
    # The local backend is free and instant: nothing to save.
    local = worker_backend(make_settings(model_backend="local"), client)
    assert not isinstance(local, ReplyMemo)
