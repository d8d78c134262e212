"""The shared RPM limiter against the run's real Redis (fakeredis has no Lua without lupa)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from refract.core.errors import RetryableModelError
from refract.gateway.limiter import RedisRateLimiter


class FakeClock:
    """Wall time the test moves; ``sleep`` advances it."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start
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


def limiter(client: redis.Redis[str], prefix: str, rpm: int, clock: FakeClock) -> RedisRateLimiter:
    return RedisRateLimiter(client, rpm, key_prefix=prefix, sleep=clock.sleep, clock=clock)


def test_admits_rpm_calls_then_waits_for_the_oldest_to_leave_the_window(
    client: redis.Redis[str], prefix: str
) -> None:
    clock = FakeClock()
    lim = limiter(client, prefix, 3, clock)
    for _ in range(3):
        lim.acquire("m", timeout_s=0)
        clock.now += 1.0
    assert clock.slept == []
    # Calls at t=0,1,2; now t=3: the first leaves the window at t=60.
    lim.acquire("m", timeout_s=120)
    assert len(clock.slept) == 1
    assert 57.0 <= clock.slept[0] <= 57.1
    assert client.zcard(lim.key("m")) == 3  # t=0 dropped, t=1, t=2 and the new call


def test_raises_rate_limited_with_retry_after_when_no_slot_in_time(
    client: redis.Redis[str], prefix: str
) -> None:
    clock = FakeClock()
    lim = limiter(client, prefix, 2, clock)
    lim.acquire("m", timeout_s=0)
    lim.acquire("m", timeout_s=0)
    clock.now += 10
    with pytest.raises(RetryableModelError) as info:
        lim.acquire("m", timeout_s=5)
    assert info.value.code == "rate_limited"
    assert info.value.retry_after == pytest.approx(50.0, abs=0.01)
    assert clock.slept == []  # it does not wait when waiting cannot help
    assert client.zcard(lim.key("m")) == 2  # a refused call takes no slot


def test_models_have_separate_windows(client: redis.Redis[str], prefix: str) -> None:
    clock = FakeClock()
    lim = limiter(client, prefix, 1, clock)
    lim.acquire("text-model", timeout_s=0)
    lim.acquire("image-model", timeout_s=0)
    with pytest.raises(RetryableModelError):
        lim.acquire("text-model", timeout_s=0)


def test_zero_rpm_is_unlimited_and_touches_nothing(client: redis.Redis[str], prefix: str) -> None:
    clock = FakeClock()
    lim = limiter(client, prefix, 0, clock)
    for _ in range(50):
        lim.acquire("m", timeout_s=0)
    assert not client.exists(lim.key("m"))


def test_window_key_expires(client: redis.Redis[str], prefix: str) -> None:
    lim = RedisRateLimiter(client, 5, key_prefix=prefix)
    lim.acquire("m", timeout_s=0)
    ttl_ms = client.pttl(lim.key("m"))
    assert 0 < ttl_ms <= 60_000


def test_limit_holds_across_concurrent_limiters(redis_url: str, prefix: str) -> None:
    # Many workers (separate limiter objects and connections) race for 10 slots.
    admitted: list[int] = []
    refused: list[int] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        conn = redis.Redis.from_url(redis_url, decode_responses=True)
        try:
            RedisRateLimiter(conn, 10, key_prefix=prefix).acquire("m", timeout_s=0)
            outcome = admitted
        except RetryableModelError:
            outcome = refused
        finally:
            conn.close()
        with lock:
            outcome.append(n)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(admitted) == 10
    assert len(refused) == 30


def test_a_redis_blip_is_waited_out(client: redis.Redis[str], prefix: str) -> None:
    clock = FakeClock()
    lim = limiter(client, prefix, 3, clock)
    script = lim._script
    failures = [redis.ConnectionError("reset by peer"), redis.TimeoutError("timed out")]

    def flaky(**kwargs: object) -> object:
        if failures:
            raise failures.pop(0)
        return script(**kwargs)

    lim._script = flaky  # type: ignore[assignment]
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
    lim = RedisRateLimiter(dead, 3, sleep=clock.sleep, clock=clock)

    with pytest.raises(RetryableModelError) as raised:
        lim.acquire("m", timeout_s=3.5)

    # Retried with growing waits within the 3.5 s, then handed to the gateway's retry loop
    # (never an unexpected error that fails the feature for good).
    assert raised.value.code == "rate_limiter_unavailable"
    assert clock.slept == [0.2, 0.4, 0.8, 1.6]
    assert raised.value.retry_after is None
    dead.close()
