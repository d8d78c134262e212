"""What the Gemini backend counts for ``/metrics``: every call by outcome, and tokens.

The backend runs in this process with no multiprocess directory, so its counters are in
the default registry; each test compares before and after.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from prometheus_client import REGISTRY

from refract.core.errors import FeatureError
from refract.core.material import ImageBlob, VideoMaterial
from refract.core.settings import Settings
from refract.gateway.gemini import GeminiBackend
from tests.support.fakes.gemini import FakeGemini, Reply
from tests.support.gemini import SleepRecorder

URL = "https://www.youtube.com/watch?v=9bZkp7q19f0"
TEXT_MODEL = "gemini-test-flash"
CAPTION = {
    "caption": "Hi",
    "description": "A cat.",
    "people_count": 0,
    "mood": "calm",
    "setting": "x",
}


def calls(outcome: str, model: str = TEXT_MODEL) -> float:
    found = REGISTRY.get_sample_value(
        "refract_model_calls_total", {"model": model, "outcome": outcome}
    )
    return found or 0.0


def tokens(direction: str, model: str = TEXT_MODEL) -> float:
    found = REGISTRY.get_sample_value(
        "refract_model_tokens_total", {"model": model, "direction": direction}
    )
    return found or 0.0


def snapshot() -> dict[str, float]:
    counted = {o: calls(o) for o in ("ok", "429", "5xx", "error", "timeout")}
    return {**counted, "input": tokens("input"), "output": tokens("output")}


def delta(before: dict[str, float]) -> dict[str, float]:
    return {
        name: value - before[name] for name, value in snapshot().items() if value != before[name]
    }


def test_a_429_then_a_5xx_then_an_answer_are_three_calls_and_its_tokens(
    backend: GeminiBackend, fake: FakeGemini, photo: ImageBlob
) -> None:
    answer = {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": json.dumps(CAPTION)}]},
                "finishReason": "STOP",
            }
        ],
        "usageMetadata": {"promptTokenCount": 120, "candidatesTokenCount": 30},
    }
    before = snapshot()
    fake.script(
        None, Reply.rate_limited(retry_delay="0.01s"), Reply.server_error(503), Reply(body=answer)
    )
    backend.caption_photo(photo, language="en")
    assert delta(before) == {"429": 1, "5xx": 1, "ok": 1, "input": 120, "output": 30}


def test_every_refused_attempt_counts_as_a_429(
    backend: GeminiBackend, fake: FakeGemini, sleeps: SleepRecorder
) -> None:
    before = snapshot()
    fake.script(None, *[Reply.rate_limited(retry_delay="0.01s")] * 3)
    with pytest.raises(FeatureError) as info:
        backend.summarize_video(VideoMaterial(url=URL), language="en")
    assert info.value.code == "rate_limited"
    assert delta(before) == {"429": 3}


def test_a_hang_past_the_timeout_counts_as_a_timeout(
    make_settings: Callable[..., Settings], fake: FakeGemini, sleeps: SleepRecorder
) -> None:
    backend = GeminiBackend(make_settings(model_timeout_s=0.5, model_max_attempts=1), sleep=sleeps)
    before = snapshot()
    fake.script(None, Reply.hang(2.0))
    try:
        with pytest.raises(FeatureError) as info:
            backend.summarize_video(VideoMaterial(url=URL), language="en")
    finally:
        backend.close()
    assert info.value.code == "model_timeout"
    assert delta(before) == {"timeout": 1}


def test_a_rejected_request_counts_as_an_error(backend: GeminiBackend, fake: FakeGemini) -> None:
    before = snapshot()
    fake.script(
        None,
        Reply(
            status=400,
            body={"error": {"code": 400, "message": "bad", "status": "INVALID_ARGUMENT"}},
        ),
    )
    with pytest.raises(FeatureError):
        backend.summarize_video(VideoMaterial(url=URL), language="en")
    assert delta(before) == {"error": 1}


def test_image_calls_are_counted_under_the_image_model(
    backend: GeminiBackend, face: ImageBlob
) -> None:
    model = "gemini-test-flash-image"
    before_ok, before_out = calls("ok", model), tokens("output", model)
    backend.stylize_face(face)
    assert calls("ok", model) == before_ok + 1
    assert tokens("output", model) > before_out
