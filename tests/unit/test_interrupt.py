"""Stopping a canceled feature's waits early: the check, the sliced wait, and the model
gateway's retry loop and rate limiter honouring them."""

from __future__ import annotations

import pytest

from refract.core import interrupt
from refract.core.errors import Canceled, RetryableModelError
from refract.gateway.retry import RetryPolicy, call_with_retries


def test_without_a_check_nothing_changes() -> None:
    slept: list[float] = []
    interrupt.check("anything")
    interrupt.wait(42.0, slept.append, "waiting")
    assert slept == [42.0]


def test_a_long_wait_is_cut_short_once_the_run_must_stop() -> None:
    slept: list[float] = []
    with interrupt.watching(lambda: len(slept) >= 3), pytest.raises(Canceled) as stopped:
        interrupt.wait(60.0, slept.append, "waiting to retry")
    assert slept == [interrupt.WAIT_SLICE_S] * 3
    assert stopped.value.doing == "waiting to retry"


def test_a_wait_that_is_never_stopped_sleeps_its_whole_length() -> None:
    slept: list[float] = []
    with interrupt.watching(lambda: False):
        interrupt.wait(2.5, slept.append, "waiting")
    assert sum(slept) == pytest.approx(2.5) and max(slept) <= interrupt.WAIT_SLICE_S


def test_the_check_is_per_context_and_ends_with_its_block() -> None:
    with interrupt.watching(lambda: True), pytest.raises(Canceled):
        interrupt.check("calling the model")
    interrupt.check("calling the model")  # no longer watched: nothing raised


def test_the_retry_loop_stops_between_attempts_of_a_canceled_run() -> None:
    calls: list[int] = []
    slept: list[float] = []
    stop = {"now": False}

    def unavailable() -> None:
        calls.append(1)
        stop["now"] = True  # canceled while the call was out
        raise RetryableModelError("model_unavailable", "503")

    policy = RetryPolicy(max_attempts=10, backoff_base_s=30.0, backoff_max_s=30.0)
    with interrupt.watching(lambda: stop["now"]), pytest.raises(Canceled):
        call_with_retries(unavailable, policy, sleep=slept.append, rand=lambda: 1.0)
    # One call, and not one second of the 30 s backoff was slept.
    assert calls == [1] and slept == []
