"""The dashboard's building blocks: prices, percentiles, model-call counts and worker
presence (the last two against the run's own Redis)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis

from refract.observability.usage import MINUTE_KEY, read_usage, record_model_call
from refract.ops.overview import percentile
from refract.ops.presence import Presence, workers_online
from refract.ops.pricing import PriceTable


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis[str]]:
    with redis.Redis.from_url(redis_url, decode_responses=True) as connected:
        yield connected


def test_prices_are_per_million_tokens_and_unknown_models_cost_nothing() -> None:
    table = PriceTable({"gemini-2.5-flash": {"input": 0.30, "output": 2.50}})
    assert table.cost("gemini-2.5-flash", 1_000_000, 200_000) == pytest.approx(0.80)
    assert table.cost("gemini-2.5-flash", None, None) == 0.0
    assert table.cost("local-pillow", 5000, 5000) == 0.0
    assert table.knows("gemini-2.5-flash") and not table.knows(None)


def test_nearest_rank_percentiles() -> None:
    values = [float(n) for n in range(1, 101)]
    assert percentile(values, 0.50) == 50.0
    assert percentile(values, 0.95) == 95.0
    assert percentile([3.0], 0.95) == 3.0
    assert percentile([], 0.5) == 0.0


def test_model_calls_are_counted_per_minute_and_in_total(client: redis.Redis[str]) -> None:
    now = 1_800_000_000.0
    record_model_call(client, "gemini-2.5-flash", "ok", now=now - 20 * 60)  # outside 15 min
    record_model_call(client, "gemini-2.5-flash", "ok", now=now - 60)
    record_model_call(client, "gemini-2.5-flash", "429", now=now)
    record_model_call(client, "gemini-2.5-flash-image", "ok", now=now)

    usage = read_usage(client, window_minutes=15, now=now)
    assert usage.recent == {
        "gemini-2.5-flash": {"ok": 1, "429": 1},
        "gemini-2.5-flash-image": {"ok": 1},
    }
    assert usage.total["gemini-2.5-flash"] == {"ok": 2, "429": 1}
    # Minute buckets expire on their own; only the total is kept for the event.
    ttl = client.ttl(MINUTE_KEY.format(minute=int(now // 60)))
    assert 0 < ttl <= 2 * 3600


def test_a_count_that_cannot_be_written_is_dropped_not_raised() -> None:
    unreachable = redis.Redis(port=1, socket_connect_timeout=0.2, decode_responses=True)
    record_model_call(unreachable, "gemini-2.5-flash", "ok")  # logs, never raises


def test_a_worker_is_online_while_it_beats_and_gone_once_stopped(
    client: redis.Redis[str],
) -> None:
    presence = Presence(client, "worker-a@host", ["image", "text"], 8, interval_s=0.1)
    presence.start()
    deadline = time.monotonic() + 5
    while not workers_online(client) and time.monotonic() < deadline:
        time.sleep(0.02)
    [entry] = workers_online(client)
    assert entry["hostname"] == "worker-a@host"
    assert entry["queues"] == ["image", "text"]
    assert entry["concurrency"] == 8
    assert 0 < client.pttl("refract:workers:worker-a@host") <= 300

    presence.stop()
    assert workers_online(client) == []


def test_a_worker_that_stops_beating_disappears_by_itself(client: redis.Redis[str]) -> None:
    presence = Presence(client, "worker-b@host", ["text"], 2, interval_s=0.05)
    presence.beat()  # one beat, then the process "dies" (no thread, no clean stop)
    assert [w["hostname"] for w in workers_online(client)] == ["worker-b@host"]
    time.sleep(0.2)
    assert workers_online(client) == []
