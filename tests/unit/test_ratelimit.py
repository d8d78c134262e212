"""Per-key API rates: the ``count/unit`` parser and the GCRA limiter on the run's real Redis."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from refract.access.ratelimit import RateLimiter
from refract.access.rates import Rate, parse_rate


class FakeClock:
    """Wall time the test moves."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis[str]]:
    with redis.Redis.from_url(redis_url, decode_responses=True) as conn:
        yield conn


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def limiter(client: redis.Redis[str], clock: FakeClock) -> RateLimiter:
    return RateLimiter(client, key_prefix=f"test:rate:{uuid.uuid4().hex}", clock=clock)


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("30/min", Rate(30, 60)),
        ("5/sec", Rate(5, 1)),
        (" 1000 / Hour ", Rate(1000, 3600)),
        ("2/day", Rate(2, 86400)),
        ("7/m", Rate(7, 60)),
    ],
)
def test_rates_parse(text: str, rate: Rate) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["", "30", "30/fortnight", "0/min", "-1/min", "x/min", "1.5/s"])
def test_bad_rates_are_refused_with_the_expected_form(text: str) -> None:
    with pytest.raises(ValueError, match="count"):
        parse_rate(text)


def test_rates_print_as_they_are_written() -> None:
    assert [str(parse_rate(t)) for t in ("30/min", "5/s", "9/hour")] == [
        "30/min",
        "5/sec",
        "9/hour",
    ]


def test_a_burst_of_count_then_one_per_interval(limiter: RateLimiter, clock: FakeClock) -> None:
    rate = Rate(3, 60)  # one slot every 20 s

    burst = [limiter.hit("submit", "k1", rate) for _ in range(3)]
    refused = limiter.hit("submit", "k1", rate)

    assert [d.allowed for d in burst] == [True, True, True]
    assert [d.remaining for d in burst] == [2, 1, 0]
    assert [d.reset_s for d in burst] == [20, 40, 60]
    assert all(d.retry_after_s == 0 for d in burst)
    assert not refused.allowed
    assert (refused.remaining, refused.retry_after_s, refused.reset_s) == (0, 20, 60)
    assert (refused.limit, refused.window_s) == (3, 60)

    clock.now += 19
    assert not limiter.hit("submit", "k1", rate).allowed  # a refusal takes no slot
    clock.now += 1
    again = limiter.hit("submit", "k1", rate)
    assert again.allowed and again.remaining == 0
    assert not limiter.hit("submit", "k1", rate).allowed


def test_an_idle_bucket_fills_up_to_its_count_and_no_further(
    limiter: RateLimiter, clock: FakeClock
) -> None:
    rate = Rate(2, 10)
    assert all(limiter.hit("read", "k1", rate).allowed for _ in range(2))
    clock.now += 3600  # a long pause banks no more than one burst

    answers = [limiter.hit("read", "k1", rate).allowed for _ in range(3)]

    assert answers == [True, True, False]


def test_policies_and_callers_have_buckets_of_their_own(limiter: RateLimiter) -> None:
    rate = Rate(1, 60)
    assert limiter.hit("submit", "k1", rate).allowed
    assert not limiter.hit("submit", "k1", rate).allowed
    assert limiter.hit("read", "k1", rate).allowed
    assert limiter.hit("submit", "k2", rate).allowed


def test_the_bucket_expires_from_redis_once_full_again(
    limiter: RateLimiter, client: redis.Redis[str]
) -> None:
    limiter.hit("submit", "k1", Rate(3, 60))
    ttl_ms = client.pttl(f"{limiter.key_prefix}:submit:k1")
    assert 19_000 <= ttl_ms <= 20_001  # one interval: nothing kept for an idle key


def test_processes_racing_never_share_out_more_than_the_count(
    client: redis.Redis[str], redis_url: str, clock: FakeClock
) -> None:
    prefix = f"test:rate:{uuid.uuid4().hex}"
    rate = Rate(10, 60)
    allowed: list[bool] = []
    lock = threading.Lock()

    def caller() -> None:
        # A connection of its own, as another API process would have.
        with redis.Redis.from_url(redis_url, decode_responses=True) as own:
            limiter = RateLimiter(own, key_prefix=prefix, clock=clock)
            for _ in range(5):
                decision = limiter.hit("submit", "shared", rate)
                with lock:
                    allowed.append(decision.allowed)

    threads = [threading.Thread(target=caller) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(allowed) == 40
    assert allowed.count(True) == 10


def test_an_unreachable_redis_is_an_error_for_the_caller_to_decide(clock: FakeClock) -> None:
    dead: redis.Redis[str] = redis.Redis(
        host="127.0.0.1",
        port=1,
        socket_connect_timeout=0.5,
        retry=Retry(NoBackoff(), 0),
        decode_responses=True,
    )
    limiter = RateLimiter(dead, clock=clock)
    with pytest.raises(redis.RedisError):
        limiter.hit("submit", "k1", Rate(1, 60))
    dead.close()
