"""The single retry loop: backoff, server delays, exhaustion, and what is never retried."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from refract.core import deadline
from refract.core.errors import FeatureError, RetryableModelError
from refract.core.settings import Settings
from refract.gateway.retry import RetryPolicy, call_with_retries


class Flaky:
    """Raises the given errors in turn, then returns ``"ok"``."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def recorder() -> tuple[list[float], Callable[[float], None]]:
    slept: list[float] = []
    return slept, slept.append


POLICY = RetryPolicy(max_attempts=4, backoff_base_s=1.0, backoff_max_s=5.0, max_retry_delay_s=30)


def test_success_first_time_does_not_sleep() -> None:
    slept, sleep = recorder()
    fn = Flaky()
    assert call_with_retries(fn, POLICY, sleep=sleep) == "ok"
    assert fn.calls == 1
    assert slept == []


def test_backoff_is_exponential_full_jitter_and_capped() -> None:
    slept, sleep = recorder()
    fn = Flaky(*(RetryableModelError("model_unavailable", "500") for _ in range(3)))
    # rand() == 1.0 shows the ceiling of each full-jitter draw: 1, 2, 4 (cap 5).
    assert call_with_retries(fn, POLICY, sleep=sleep, rand=lambda: 1.0) == "ok"
    assert fn.calls == 4
    assert slept == [1.0, 2.0, 4.0]

    slept, sleep = recorder()
    policy = RetryPolicy(max_attempts=6, backoff_base_s=1.0, backoff_max_s=3.0)
    fn = Flaky(*(RetryableModelError("model_timeout", "slow") for _ in range(5)))
    call_with_retries(fn, policy, sleep=sleep, rand=lambda: 1.0)
    assert slept == [1.0, 2.0, 3.0, 3.0, 3.0]


def test_jitter_scales_the_ceiling() -> None:
    slept, sleep = recorder()
    fn = Flaky(RetryableModelError("model_unavailable", "x"), RetryableModelError("x", "y"))
    call_with_retries(fn, POLICY, sleep=sleep, rand=lambda: 0.25)
    assert slept == [0.25, 0.5]


def test_server_retry_delay_is_honoured_instead_of_backoff() -> None:
    slept, sleep = recorder()
    fn = Flaky(RetryableModelError("rate_limited", "429", retry_after=26.0))
    assert call_with_retries(fn, POLICY, sleep=sleep, rand=lambda: 1.0) == "ok"
    assert slept == [26.0]


def test_server_delay_above_the_limit_is_not_waited_for() -> None:
    slept, sleep = recorder()
    fn = Flaky(RetryableModelError("rate_limited", "quota", retry_after=3600.0))
    with pytest.raises(FeatureError) as info:
        call_with_retries(fn, POLICY, sleep=sleep)
    assert info.value.code == "rate_limited"
    assert info.value.status == "failed"
    assert "3600" in info.value.message
    assert fn.calls == 1
    assert slept == []


@pytest.mark.parametrize("code", ["rate_limited", "model_unavailable", "model_timeout"])
def test_exhausted_attempts_raise_feature_error_with_the_code(code: str) -> None:
    slept, sleep = recorder()
    fn = Flaky(*(RetryableModelError(code, "still failing") for _ in range(10)))
    with pytest.raises(FeatureError) as info:
        call_with_retries(fn, RetryPolicy(max_attempts=3, backoff_base_s=0.1), sleep=sleep)
    assert info.value.code == code
    assert "3 attempts" in info.value.message
    assert "still failing" in info.value.message
    assert info.value.details["attempts"] == 3
    assert fn.calls == 3
    assert len(slept) == 2  # no wait after the last attempt


def test_on_retry_sees_attempt_error_and_delay() -> None:
    seen: list[tuple[int, str, float]] = []
    fn = Flaky(
        RetryableModelError("model_unavailable", "a"),
        RetryableModelError("rate_limited", "b", retry_after=2.0),
    )
    call_with_retries(
        fn,
        POLICY,
        sleep=lambda s: None,
        rand=lambda: 0.5,
        on_retry=lambda n, e, d: seen.append((n, e.code, d)),
    )
    assert seen == [(1, "model_unavailable", 0.5), (2, "rate_limited", 2.0)]


def test_other_errors_propagate_at_once() -> None:
    slept, sleep = recorder()
    fn = Flaky(FeatureError("model_request_rejected", "400"))
    with pytest.raises(FeatureError) as info:
        call_with_retries(fn, POLICY, sleep=sleep)
    assert info.value.code == "model_request_rejected"
    assert fn.calls == 1

    fn = Flaky(KeyError("bug"))
    with pytest.raises(KeyError):
        call_with_retries(fn, POLICY, sleep=sleep)
    assert fn.calls == 1
    assert slept == []


def test_single_attempt_policy_never_sleeps() -> None:
    slept, sleep = recorder()
    fn = Flaky(RetryableModelError("model_timeout", "slow"))
    with pytest.raises(FeatureError) as info:
        call_with_retries(fn, RetryPolicy(max_attempts=1), sleep=sleep)
    assert info.value.code == "model_timeout"
    assert "1 attempt)" in info.value.message
    assert slept == []


def test_policy_from_settings() -> None:
    settings = Settings(
        model_max_attempts=7,
        model_backoff_base_s=0.5,
        model_backoff_max_s=9.0,
        model_max_retry_delay_s=12.0,
    )
    assert RetryPolicy.from_settings(settings) == RetryPolicy(7, 0.5, 9.0, 12.0)


def test_a_retry_whose_wait_would_pass_the_deadline_fails_at_once() -> None:
    slept, sleep = recorder()
    flaky = Flaky(RetryableModelError("rate_limited", "429", retry_after=5.0))
    with deadline.within(2.0), pytest.raises(FeatureError) as caught:
        call_with_retries(flaky, RetryPolicy(max_attempts=4), sleep=sleep)
    assert caught.value.code == "deadline_exceeded"
    assert slept == [] and flaky.calls == 1


def test_no_call_starts_once_the_deadline_has_passed() -> None:
    flaky = Flaky()
    with deadline.within(0.0), pytest.raises(FeatureError) as caught:
        call_with_retries(flaky, RetryPolicy(max_attempts=4))
    assert caught.value.code == "deadline_exceeded" and flaky.calls == 0


def test_deadlines_nest_to_the_sooner_one() -> None:
    with deadline.within(100.0), deadline.within(1.0):
        left = deadline.remaining_s()
        assert left is not None and left <= 1.0
        assert deadline.bounded(30.0, "calling") <= 1.0
    assert deadline.remaining_s() is None
    assert deadline.bounded(30.0, "calling") == 30.0
