"""A model that misbehaves in every way it can, each job's features given their own fault:
429 with RetryInfo, 5xx, hangs past the timeout, safety blocks, invalid JSON. Each job ends
as its faults say it must, retries happen only where a fault asked for them, and the
server's retry delay is honoured."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest

from tests.support.chaos.batch import BatchJob, photo_marker, submit_batch, video_marker
from tests.support.chaos.checks import Expected, verify
from tests.support.chaos.findings import Findings, timed
from tests.support.chaos.gemini import FeatureKey
from tests.support.chaos.rig import ChaosRig
from tests.support.fakes.gemini import Reply

pytestmark = [pytest.mark.chaos, pytest.mark.integration, pytest.mark.timeout(240)]

FINAL_BOUND_S = 60
TEXT_TIMEOUT_S = 3.0
HANG_S = 8.0  # past the timeout: the call is abandoned
MAX_RETRY_DELAY_S = 5


@dataclass(frozen=True)
class Fault:
    """Replies for one feature of one job, what it must end as, and how many calls."""

    marker: str
    feature: str
    replies: tuple[Reply, ...]
    outcome: tuple[str, str | None]
    calls: int


V, P = video_marker, photo_marker
OK = ("succeeded", None)
FAULTS = [
    # 429 with RetryInfo 1s, once: waited for, then answered.
    Fault(V(0), "summary", (Reply.rate_limited("1s"),), OK, 2),
    # 503 once: retried after a backoff.
    Fault(V(1), "comments", (Reply.server_error(503),), OK, 2),
    # 500 on every attempt: the feature fails with the transient code once attempts run out.
    Fault(V(2), "thumbnail", (Reply.server_error(500),) * 3, ("failed", "model_unavailable"), 3),
    # A hang past the timeout, once: abandoned, retried, answered.
    Fault(V(3), "summary", (Reply.hang(HANG_S),), OK, 2),
    # Hangs on every attempt: model_timeout.
    Fault(V(4), "comments", (Reply.hang(HANG_S),) * 3, ("failed", "model_timeout"), 3),
    # A safety stop: blocked, never retried.
    Fault(V(5), "thumbnail", (Reply.finish("SAFETY"),), ("blocked", "safety_block"), 1),
    # Invalid JSON twice: asked once more, then invalid_model_output.
    Fault(
        V(6),
        "summary",
        (Reply.text('{"tldr": "cut off'),) * 2,
        ("failed", "invalid_model_output"),
        2,
    ),
    # 429 asking for longer than we wait: fails at once, the delay is not slept through.
    Fault(V(7), "comments", (Reply.rate_limited("30s"),), ("failed", "rate_limited"), 1),
    # The photo refused outright: caption blocked, the card skipped.
    Fault(P(0), "caption", (Reply.prompt_blocked(),), ("blocked", "safety_block"), 1),
    # The portrait refused: stylize blocked, the card skipped.
    Fault(P(1), "stylize", (Reply.finish("IMAGE_SAFETY"),), ("blocked", "safety_block"), 1),
    # The image model down once while making the card: retried.
    Fault(P(2), "card", (Reply.server_error(503),), OK, 2),
    # Invalid JSON once: the second answer is used.
    Fault(P(3), "caption", (Reply.text("not json at all"),), OK, 2),
]


def expectations(jobs: list[BatchJob]) -> tuple[dict[str, Expected], dict[FeatureKey, int]]:
    """Each job's expected end and each feature's expected number of model calls."""
    faults = {(f.marker, f.feature): f for f in FAULTS}
    expected: dict[str, Expected] = {}
    calls: dict[FeatureKey, int] = {}
    for job in jobs:
        features: dict[str, tuple[str, str | None]] = {}
        for feature in job.features:
            fault = faults.get(job.key(feature))
            features[feature] = fault.outcome if fault else OK
            calls[job.key(feature)] = fault.calls if fault else 1
        if "card" in features and (features["caption"] != OK or features["stylize"] != OK):
            features["card"] = ("skipped", "input_unavailable")
            calls[job.key("card")] = 0
        succeeded = sum(status == "succeeded" for status, _ in features.values())
        status = "succeeded" if succeeded == len(features) else "partial" if succeeded else "failed"
        expected[job.marker] = Expected(status, features)
    return expected, calls


def test_model_fault_mix_ends_each_job_as_its_faults_say(chaos: ChaosRig) -> None:
    findings = Findings("model fault mix")
    with timed(findings, "stack start"):
        chaos.start_stack(
            REFRACT_MODEL_TIMEOUT_S=str(TEXT_TIMEOUT_S),
            REFRACT_MODEL_MAX_ATTEMPTS="3",
            REFRACT_MODEL_MAX_RETRY_DELAY_S=str(MAX_RETRY_DELAY_S),
        )
    for fault in FAULTS:
        chaos.fake.fault(fault.marker, fault.feature, *fault.replies)
    submitted = time.monotonic()
    jobs = submit_batch(chaos.http(), chaos.fake)
    expected, calls = expectations(jobs)
    faulted = {(f.marker, f.feature) for f in FAULTS}
    verify(
        chaos,
        findings,
        jobs,
        deadline=submitted + FINAL_BOUND_S,
        bound=f"{FINAL_BOUND_S}s of submission",
        expected=expected,
        in_flight=faulted,
        exactly_one_attempt=True,
    )
    findings.check(
        "each feature called exactly as often as its fault asks", _call_counts(chaos, calls)
    )
    findings.check("a 429's RetryInfo delay is waited for", _retry_delay_honoured(chaos))
    findings.note(f"scenario took {time.monotonic() - submitted:.1f}s after the first submission")
    findings.assert_ok(chaos.log_excerpt)


def _call_counts(chaos: ChaosRig, calls: dict[FeatureKey, int]) -> list[str]:
    problems = []
    for key, want in sorted(calls.items()):
        got = chaos.fake.answers_for(key)
        if len(got) != want:
            problems.append(
                f"{key[0]}.{key[1]}: {len(got)} calls (want {want}): {[a.outcome for a in got]}"
            )
    return problems


def _retry_delay_honoured(chaos: ChaosRig) -> list[str]:
    got = chaos.fake.answers_for((V(0), "summary"))
    if len(got) < 2:
        return [f"{V(0)}.summary was not retried ({[a.outcome for a in got]})"]
    # The 429 came back at ends_at; the retry must come at least the 1s RetryInfo later.
    gap = got[1].received_at - got[0].ends_at
    return [] if gap >= 0.9 else [f"retried {gap:.2f}s after the 429, RetryInfo said 1s"]
