"""The shared Gemini quota against the run's real Redis (fakeredis has no Lua without lupa).

The window runs on Redis's clock, so these tests read what the limiter booked (the sorted
set's scores are Redis times) and what it asked to sleep (a fake sleep records it), never
the host's clock.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from refract.core.errors import RetryableModelError
from refract.gateway.limiter import Quota, RedisRateLimiter

SPAN_S = 60.25  # the window and its margin


class FakeClock:
    """The caller's elapsed time, which ``sleep`` advances (the window is Redis's)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis[str]]:
    with redis.Redis.from_url(redis_url, decode_responses=True) as conn:
        yield conn


@pytest.fixture
def prefix() -> str:
    return f"test:ratelimit:{uuid.uuid4().hex}"


def limiter(
    client: redis.Redis[str], prefix: str, clock: FakeClock, rpm: int = 0, tpm: int = 0
) -> RedisRateLimiter:
    return RedisRateLimiter(
        client, {"m": Quota(rpm, tpm)}, key_prefix=prefix, sleep=clock.sleep, clock=clock
    )


def bookings(client: redis.Redis[str], lim: RedisRateLimiter, model: str = "m") -> list[float]:
    """The booked moments of ``model``, in seconds of Redis's clock, oldest first."""
    return [score / 1000 for _, score in client.zrange(lim.key(model), 0, -1, withscores=True)]


def test_lets_rpm_calls_out_at_once_then_books_the_next_a_window_later(
    client: redis.Redis[str], prefix: str
) -> None:
    clock = FakeClock()
    lim = limiter(client, prefix, clock, rpm=3)
    for _ in range(3):
        lim.acquire("m", timeout_s=0)
    assert clock.slept == []
    lim.acquire("m", timeout_s=120)
    assert len(clock.slept) == 1
    assert SPAN_S - 1 < clock.slept[0] <= SPAN_S
    booked = bookings(client, lim)
    assert booked[3] - booked[0] == pytest.approx(SPAN_S, abs=0.002)


def test_calls_are_served_in_the_order_they_asked(client: redis.Redis[str], prefix: str) -> None:
    clock = FakeClock()
    lim = limiter(client, prefix, clock, rpm=2)
    moments = []
    for _ in range(7):
        booking, _wait = lim.book("m", max_wait_s=1000)
        assert booking is not None
        moment = client.zscore(lim.key("m"), f"{booking.id}|{booking.tokens}")
        assert moment is not None
        moments.append(moment)
    # Two per window, each never earlier than the one asked before it: 0,0, ~60,~60, ...
    assert moments == sorted(moments)
    booked = bookings(client, lim)
    for earlier, later in zip(booked, booked[2:], strict=False):
        assert later - earlier >= SPAN_S - 0.001  # never three in one window


def test_a_moment_too_far_away_books_nothing_and_says_when(
    client: redis.Redis[str], prefix: str
) -> None:
    clock = FakeClock()
    lim = limiter(client, prefix, clock, rpm=2)
    lim.acquire("m", timeout_s=0)
    lim.acquire("m", timeout_s=0)
    with pytest.raises(RetryableModelError) as info:
        lim.acquire("m", timeout_s=5)
    assert info.value.code == "rate_limited"
    assert info.value.retry_after is not None and SPAN_S - 1 < info.value.retry_after <= SPAN_S
    assert clock.slept == []  # it does not wait when waiting cannot help
    assert client.zcard(lim.key("m")) == 2  # a refused call takes no moment


def test_tokens_per_minute_hold_and_a_settled_call_gives_back_what_it_did_not_use(
    client: redis.Redis[str], prefix: str
) -> None:
    clock = FakeClock()
    lim = limiter(client, prefix, clock, tpm=1000)
    first = lim.acquire("m", timeout_s=0, tokens=600)
    assert first is not None
    # 600 + 600 > 1000: the second call would have to wait for the first to leave.
    refused, wait = lim.book("m", tokens=600, max_wait_s=0)
    assert refused is None and SPAN_S - 1 < wait <= SPAN_S
    lim.settle(first, 100)  # the answer said it cost 100 input tokens
    second, wait = lim.book("m", tokens=600, max_wait_s=0)
    assert second is not None and wait == 0
    # 100 + 600 booked: one of 400 still fits, one of 301 does not.
    assert lim.book("m", tokens=301, max_wait_s=0)[0] is None
    assert lim.book("m", tokens=300, max_wait_s=0)[0] is not None


def test_a_call_bigger_than_the_whole_quota_still_goes_alone(
    client: redis.Redis[str], prefix: str
) -> None:
    clock = FakeClock()
    lim = limiter(client, prefix, clock, tpm=1000)
    assert lim.book("m", tokens=5000, max_wait_s=0)[0] is not None
    assert lim.book("m", tokens=1, max_wait_s=0)[0] is None  # the window is full after it


def test_a_hold_off_makes_every_later_call_wait_it_out(
    client: redis.Redis[str], prefix: str
) -> None:
    clock = FakeClock()
    lim = limiter(client, prefix, clock, rpm=100)
    lim.hold_off("m", 5.0)  # Gemini said 429, retry in 5 s
    waits = [lim.book("m", max_wait_s=60)[1] for _ in range(3)]
    assert all(4.9 < wait <= 5.0 for wait in waits)
    assert lim.book("other-model", max_wait_s=0)[1] == 0  # other models are not held


def test_the_window_runs_on_redis_clock_not_the_hosts(
    client: redis.Redis[str], prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    lim = limiter(client, prefix, clock, rpm=1)
    lim.acquire("m", timeout_s=0)
    # This host's clock jumps an hour ahead: the window does not care.
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 3600)
    assert lim.book("m", max_wait_s=0)[0] is None


def test_models_have_separate_windows_and_unlimited_ones_touch_nothing(
    client: redis.Redis[str], prefix: str
) -> None:
    clock = FakeClock()
    lim = RedisRateLimiter(
        client,
        {"text": Quota(rpm=1), "image": Quota(rpm=1)},
        default=Quota(),
        key_prefix=prefix,
        sleep=clock.sleep,
        clock=clock,
    )
    lim.acquire("text", timeout_s=0)
    lim.acquire("image", timeout_s=0)
    with pytest.raises(RetryableModelError):
        lim.acquire("text", timeout_s=0)
    for _ in range(50):
        assert lim.acquire("free", timeout_s=0) is None
    assert not client.exists(lim.key("free"))


def test_the_window_key_expires(client: redis.Redis[str], prefix: str) -> None:
    lim = limiter(client, prefix, FakeClock(), rpm=5)
    lim.acquire("m", timeout_s=0)
    assert 0 < client.pttl(lim.key("m")) <= (SPAN_S + 1) * 1000


def test_exact_admission_across_concurrent_limiters(redis_url: str, prefix: str) -> None:
    # Two processes' limiters (own connections), eight threads, a one-second window of 5:
    # every call is booked and never more than 5 fall in any window. (How fully the rate
    # is used is the benchmark's to measure: bench/, the quota row.)
    rpm, calls = 5, 30
    moments: list[float] = []
    lock = threading.Lock()
    connections = [redis.Redis.from_url(redis_url, decode_responses=True) for _ in range(2)]
    limiters = [
        RedisRateLimiter(conn, {"m": Quota(rpm=rpm)}, key_prefix=prefix, window_s=1.0, margin_s=0)
        for conn in connections
    ]
    left = [calls]

    def worker(n: int) -> None:
        lim = limiters[n % 2]
        while True:
            with lock:
                if left[0] == 0:
                    return
                left[0] -= 1
            booking = lim.acquire("m", timeout_s=30)
            assert booking is not None
            # Read at once: the booking leaves the sorted set a window after its moment.
            score = lim.redis.zscore(lim.key("m"), f"{booking.id}|{booking.tokens}")
            assert score is not None
            with lock:
                moments.append(score / 1000)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for conn in connections:
        conn.close()
    moments.sort()
    assert len(moments) == calls
    for earlier, later in zip(moments, moments[rpm:], strict=False):
        assert later - earlier >= 1.0 - 0.001  # never rpm + 1 in one window


def test_a_redis_blip_is_waited_out(client: redis.Redis[str], prefix: str) -> None:
    clock = FakeClock()
    lim = limiter(client, prefix, clock, rpm=3)
    script = lim._reserve
    failures = [redis.ConnectionError("reset by peer"), redis.TimeoutError("timed out")]

    def flaky(**kwargs: object) -> object:
        if failures:
            raise failures.pop(0)
        return script(**kwargs)

    lim._reserve = flaky  # type: ignore[assignment]
    lim.acquire("m", timeout_s=30)

    assert failures == []
    assert clock.slept == [0.2, 0.4]  # backed off, then admitted
    assert client.zcard(lim.key("m")) == 1


def test_redis_out_of_reach_past_the_wait_is_a_retryable_error() -> None:
    clock = FakeClock()
    # Nothing listens on port 1: every call is refused at once.
    dead = redis.Redis(
        host="127.0.0.1",
        port=1,
        socket_connect_timeout=0.2,
        retry=Retry(NoBackoff(), 0),
        decode_responses=True,
    )
    lim = RedisRateLimiter(dead, {"m": Quota(rpm=3)}, sleep=clock.sleep, clock=clock)

    with pytest.raises(RetryableModelError) as raised:
        lim.acquire("m", timeout_s=3.5)

    # Retried with growing waits within the 3.5 s, then handed to the gateway's retry loop
    # (never an unexpected error that fails the feature for good).
    assert raised.value.code == "rate_limiter_unavailable"
    assert clock.slept == [0.2, 0.4, 0.8, 1.6]
    assert raised.value.retry_after is None
    dead.close()
