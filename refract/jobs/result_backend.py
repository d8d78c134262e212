"""The result backend of a process that only sends tasks (the API).

Celery's :class:`~celery.backends.redis.RedisBackend` subscribes to a task's result channel
the moment the task is sent (``on_task_call``, and for each member of a group or chord),
so that ``AsyncResult.get()`` could wait on it, and unsubscribes when the result object
is dropped. The API never waits on a task: job status comes from Postgres and the
progress snapshot. For it those are Redis round trips per task sent for nothing, on a
pub/sub connection of their own, and while Redis is down a send first stalls on that
subscribe before it can fail and leave the job to the reconciler.
:class:`SendOnlyRedisBackend` skips the subscription (and checks Redis before a chord
instead, so that a chord is still sent whole or not at all); everything else (the chord
counters the worker joins on) is the stock backend.
"""

from __future__ import annotations

from typing import Any

from celery.backends.redis import RedisBackend

#: ``result_backend`` prefix that selects :class:`SendOnlyRedisBackend` for a Redis URL.
SEND_ONLY_BACKEND = "refract.jobs.result_backend:SendOnlyRedisBackend"


class SendOnlyRedisBackend(RedisBackend):
    """A Redis result backend that never subscribes to the results of what it sends."""

    def on_task_call(self, producer: Any, task_id: str) -> None:
        """Send without subscribing: this process never waits on a task's result."""

    def apply_chord(self, header_result_args: Any, body: Any, **kwargs: Any) -> None:
        """Make sure the chord's Redis answers before any of its header is sent.

        Celery writes a chord's size to Redis just before sending the header's last task:
        with Redis down, the first tasks would already be out, a half-sent chord. Without
        the subscription that used to fail first, this check keeps a chord all or nothing.
        """
        self.ensure(self.client.ping, ())
        super().apply_chord(header_result_args, body, **kwargs)

    def add_pending_result(
        self, result: Any, weak: bool = False, start_drainer: bool = True
    ) -> Any:
        """Track nothing: a group or chord registers its results here as it is sent, which
        would subscribe to each of them (and need Redis) just the same."""
        return result

    def add_pending_results(self, results: Any, weak: bool = False) -> list[Any]:
        """Track nothing (see :meth:`add_pending_result`)."""
        return list(results)


def send_only(result_url: str) -> str:
    """The ``result_backend`` setting for a process that sends tasks but reads no result."""
    return f"{SEND_ONLY_BACKEND}+{result_url}"
