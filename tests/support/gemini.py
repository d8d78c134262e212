"""What the Gemini backend tests share besides the fake server: its key, a sleep recorder."""

from __future__ import annotations

API_KEY = "test-gemini-key"


class SleepRecorder:
    """A ``sleep`` that records what it was asked to wait and returns at once."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
