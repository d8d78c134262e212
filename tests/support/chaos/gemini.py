"""The chaos suite's fake Gemini: a fault per job x feature, and a record of every answer."""

from __future__ import annotations

import hashlib
import threading
import time
from collections import deque
from dataclasses import dataclass

from refract.gateway.prompts import load_prompt
from refract.jobs.catalog import JobKind, features_of
from tests.support.fakes.gemini import FakeGemini, RecordedRequest, Reply

VIDEO_FEATURES = tuple(features_of(JobKind.VIDEO))
PHOTO_FEATURES = tuple(features_of(JobKind.PHOTOCARD))
IMAGE_FEATURES = ("stylize", "card")

# (job marker, feature): how the fake names a feature of a job of the batch.
FeatureKey = tuple[str, str]


@dataclass(frozen=True)
class Answer:
    """One generateContent call the fake answered (or let hang)."""

    key: FeatureKey | None  # None: a request of no registered job (a probe job)
    feature: str | None
    received_at: float
    ends_at: float  # when the answer was sent, or the caller gave up on it
    outcome: str  # ok, hang, http_<code>, blocked, finish_<reason>, scripted

    @property
    def successful(self) -> bool:
        """A normal answer, sent in time: the feature's result."""
        return self.outcome == "ok"


class ChaosGemini(FakeGemini):
    """The fake Gemini, knowing which job and feature each request is for.

    A job is registered before it is submitted: a video job by a marker in its title
    (every video feature's prompt shows the title); a photo card by the exact bytes of
    its stored photo (what ``caption`` sends) and of the face crop (what ``stylize``
    sends), and by a marker in the visitor's prompt (which only ``card`` sends). The
    feature is told by the prompt's system text. :meth:`fault` gives a job's feature its
    own replies; every answer is recorded as an :class:`Answer`.
    """

    name = "chaos-gemini"

    def __init__(self) -> None:
        super().__init__()
        self.text_timeout_s = 60.0
        self.image_timeout_s = 120.0
        self._chaos_lock = threading.Lock()
        self._answers: list[Answer] = []
        self._faults: dict[FeatureKey, deque[Reply]] = {}
        self._video_markers: set[str] = set()
        self._card_markers: set[str] = set()
        self._images: dict[str, FeatureKey] = {}
        self._systems = {f: load_prompt(f).system.strip() for f in (*VIDEO_FEATURES, "caption")}
        self._image_systems = {f: load_prompt(f).system.strip() for f in IMAGE_FEATURES}

    # --- registration and faults -------------------------------------------------

    def register_video(self, marker: str) -> None:
        """Requests whose prompt shows ``marker`` (in the title) are this video job's."""
        with self._chaos_lock:
            self._video_markers.add(marker)

    def register_photo(self, marker: str, photo: bytes, face: bytes) -> None:
        """This photo card's caption sends ``photo``, its stylize ``face``, its card
        prompt carries ``marker``."""
        with self._chaos_lock:
            self._images[sha(photo)] = (marker, "caption")
            self._images[sha(face)] = (marker, "stylize")
            self._card_markers.add(marker)

    def fault(self, marker: str, feature: str, *replies: Reply) -> None:
        """Answer the next calls of ``feature`` of job ``marker`` with ``replies``."""
        with self._chaos_lock:
            self._faults.setdefault((marker, feature), deque()).extend(replies)

    # --- inspection ----------------------------------------------------------------

    @property
    def answers(self) -> list[Answer]:
        """Every answer so far, in arrival order."""
        with self._chaos_lock:
            return list(self._answers)

    def answers_for(self, key: FeatureKey) -> list[Answer]:
        """The answers to one feature of one job."""
        return [a for a in self.answers if a.key == key]

    def in_progress(self, now: float | None = None) -> int:
        """How many calls are being answered right now."""
        now = time.monotonic() if now is None else now
        return sum(1 for a in self.answers if a.received_at <= now < a.ends_at)

    def active_between(self, start: float, end: float) -> set[FeatureKey]:
        """The features of registered jobs with a call under way at some point of
        ``[start, end]``."""
        return {
            a.key
            for a in self.answers
            if a.key is not None and a.received_at <= end and a.ends_at >= start
        }

    def wait_busy(self, calls: int, timeout_s: float = 30) -> None:
        """Wait until at least ``calls`` calls are under way at once."""
        deadline = time.monotonic() + timeout_s
        while self.in_progress() < calls:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the fake Gemini never had {calls} calls under way "
                    f"({len(self.answers)} answered so far)"
                )
            time.sleep(0.05)

    # --- used by the handler -------------------------------------------------------

    def identify(self, request: RecordedRequest) -> tuple[str | None, FeatureKey | None]:
        """The feature a request is for, and the registered job's key if it is one."""
        feature = self._feature_of(request)
        if feature is None:
            return None, None
        with self._chaos_lock:
            if feature in VIDEO_FEATURES:
                raw = request.raw.decode("utf-8", "replace")
                found = [m for m in self._video_markers if m in raw]
                return feature, (found[0], feature) if len(found) == 1 else None
            if feature in ("caption", "stylize"):
                images = request.images
                key = self._images.get(sha(images[0][1])) if images else None
                return feature, key if key is not None and key[1] == feature else None
            joined = "\n".join(request.texts)
            found = [m for m in self._card_markers if m in joined]
            return feature, (found[0], feature) if len(found) == 1 else None

    def _feature_of(self, request: RecordedRequest) -> str | None:
        system = request.system_text.strip()
        if system:
            for feature, text_ in self._systems.items():
                if system == text_:
                    return feature
            return None
        joined = "\n".join(request.texts)
        for feature, text_ in self._image_systems.items():
            if text_ in joined:
                return feature
        return None

    def _pick(self, request: RecordedRequest) -> Reply:
        feature, key = self.identify(request)
        reply: Reply | None = None
        with self._chaos_lock:
            queue = self._faults.get(key) if key is not None else None
            if queue:
                reply = queue.popleft()
        if reply is None:
            reply = super()._pick(request)
        timeout_s = self.image_timeout_s if feature in IMAGE_FEATURES else self.text_timeout_s
        delay_s = reply.delay_s or self.latency_s
        answer = Answer(
            key=key,
            feature=feature,
            received_at=request.received_at,
            ends_at=request.received_at + min(delay_s, timeout_s),
            outcome=_outcome(reply, delay_s, timeout_s),
        )
        with self._chaos_lock:
            self._answers.append(answer)
        return reply


def sha(data: bytes) -> str:
    """The hex SHA-256 of ``data``: how the fake recognises an image of the batch."""
    return hashlib.sha256(data).hexdigest()


def _outcome(reply: Reply, delay_s: float, timeout_s: float) -> str:
    if delay_s >= timeout_s:
        return "hang"
    if reply.status != 200:
        return f"http_{reply.status}"
    if reply.body is None:
        return "ok"
    if "promptFeedback" in reply.body:
        return "blocked"
    candidates = reply.body.get("candidates") or []
    reason = candidates[0].get("finishReason") if candidates else None
    if reason not in (None, "STOP"):
        return f"finish_{reason}"
    return "scripted"
