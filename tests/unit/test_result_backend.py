"""The API's result backend sends without subscribing to the results of what it sent."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import redis

from refract.core.settings import Settings
from refract.jobs.celery_app import create_celery_app
from refract.jobs.result_backend import SendOnlyRedisBackend


def test_the_send_only_backend_is_the_configured_redis(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(redis_url="redis://127.0.0.1:6390/4")
    backend: Any = create_celery_app(settings, send_only=True).backend  # stubs lack connparams
    params = backend.connparams
    assert isinstance(backend, SendOnlyRedisBackend)
    assert (params["host"], params["port"], params["db"]) == ("127.0.0.1", 6390, 4)
    # The worker's app keeps the stock backend: chords join through its results.
    assert not isinstance(create_celery_app(settings).backend, SendOnlyRedisBackend)


def test_sending_never_subscribes_to_the_result(
    make_settings: Callable[..., Settings], redis_url: str
) -> None:
    settings = make_settings(redis_url=redis_url)
    stock, send_only = create_celery_app(settings), create_celery_app(settings, send_only=True)
    # The stubs know a Backend, not the Redis backend's result consumer.
    stock_backend: Any = stock.backend
    send_only_backend: Any = send_only.backend
    try:
        kept = [
            app.send_task("refract.text.nothing", task_id=str(uuid.uuid4()), queue="nobody")
            for app in (stock, send_only)
        ]
        # The stock backend opens a pub/sub connection and subscribes to every task it
        # sends; the API's never does, so a send is the broker's publish and nothing else.
        assert stock_backend.result_consumer.subscribed_to == {
            stock_backend.get_key_for_task(kept[0].id)
        }
        assert send_only_backend.result_consumer._pubsub is None
        assert send_only_backend.result_consumer.subscribed_to == set()
        # The message itself went out, to be run (and its result stored) by a worker.
        client = redis.Redis.from_url(redis_url)
        assert client.llen("nobody") == 2
        client.close()
    finally:
        stock.close()
        send_only.close()
