"""What the YouTube tests share besides the fake server: video ids and a stand-in for the
transcript library (which talks to youtube.com itself and cannot be pointed at a fake)."""

from __future__ import annotations

from refract.core.material import TranscriptLine

VIDEO = "dQw4w9WgXcQ"
OTHER = "jNQXAC9IVRw"


class TranscriptCalls:
    """Stands in for the transcript library: records calls, answers what it is told."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[str, ...]]] = []
        self.lines: list[TranscriptLine] | None = None  # None: raise, as a blocked scrape

    def __call__(
        self, video_id: str, languages: tuple[str, ...], timeout_s: float
    ) -> list[TranscriptLine]:
        self.calls.append((video_id, languages))
        if self.lines is None:
            raise RuntimeError("youtube.com refused (fake)")
        return list(self.lines)
