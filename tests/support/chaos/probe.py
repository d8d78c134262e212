"""Probing the API from a thread of its own while a fault is under way."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Self

import httpx

from refract.jobs.catalog import JobKind
from tests.support.chaos.batch import BatchJob, submit_video
from tests.support.chaos.gemini import ChaosGemini


@dataclass(frozen=True)
class ProbeResult:
    """One request a probe sent."""

    target: str  # post, get_job, get_unknown, list, readyz
    sent_phase: str
    done_phase: str
    status: int | None
    retry_after: str | None
    error: str | None
    elapsed_s: float
    detail: str

    @property
    def within(self) -> str | None:
        """The phase the whole request fell in, if it was sent and answered in one."""
        return self.sent_phase if self.sent_phase == self.done_phase else None


class ApiProbe:
    """Polls the API from a thread while a fault is on: a known job (``get_job``), a job
    that does not exist (``get_unknown``: only the database can say so), the job list,
    ``/readyz``, and in ``post_phases`` a new video job each round. Every answer is
    recorded with the phase the test was in when it was sent and when it came back."""

    def __init__(
        self,
        base_url: str,
        known_job: str,
        fake: ChaosGemini,
        *,
        post_phases: Iterable[str] = (),
        interval_s: float = 0.5,
        timeout_s: float = 10,
    ) -> None:
        self.base_url = base_url
        self.known_job = known_job
        self.fake = fake
        self.post_phases = frozenset(post_phases)
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.phase = "before"
        self.results: list[ProbeResult] = []
        self.accepted: list[BatchJob] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="api-probe", daemon=True)
        self._count = 0

    def start(self) -> Self:
        """Start polling."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop polling and wait for the last request."""
        self._stop.set()
        self._thread.join(timeout=self.timeout_s * 6)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        unknown = str(uuid.uuid4())
        with httpx.Client(base_url=self.base_url, timeout=self.timeout_s) as client:
            while not self._stop.is_set():
                self._get(client, "get_job", f"/api/v1/jobs/{self.known_job}")
                self._get(client, "get_unknown", f"/api/v1/jobs/{unknown}")
                self._get(client, "list", "/api/v1/jobs?limit=5")
                self._get(client, "readyz", "/readyz")
                if self.phase in self.post_phases:
                    self._post(client)
                self._stop.wait(self.interval_s)

    def _get(self, client: httpx.Client, target: str, path: str) -> None:
        self._send(target, lambda: client.get(path))

    def _post(self, client: httpx.Client) -> None:
        self._count += 1
        marker = f"PROBE{self._count:03d}Z"
        response = self._send(
            target="post",
            call=lambda: submit_video(client, marker, features=["summary"]),
        )
        if response is not None and response.status_code in (200, 202):
            self.accepted.append(
                BatchJob(
                    marker,
                    JobKind.VIDEO,
                    response.json()["id"],
                    list(response.json()["features"]),
                    probe=True,
                )
            )

    def _send(self, target: str, call: Callable[[], httpx.Response]) -> httpx.Response | None:
        sent_phase = self.phase
        started = time.monotonic()
        response: httpx.Response | None = None
        error: str | None = None
        try:
            response = call()
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        self.results.append(
            ProbeResult(
                target=target,
                sent_phase=sent_phase,
                done_phase=self.phase,
                status=response.status_code if response is not None else None,
                retry_after=response.headers.get("retry-after") if response is not None else None,
                error=error,
                elapsed_s=round(time.monotonic() - started, 2),
                detail=response.text[:300] if response is not None else "",
            )
        )
        return response

    def in_phase(self, phase: str, target: str | None = None) -> list[ProbeResult]:
        """The requests sent and answered within ``phase`` (of ``target``, if given)."""
        return [
            r for r in self.results if r.within == phase and (target is None or r.target == target)
        ]


def wait_until(condition: Callable[[], bool], timeout_s: float) -> bool:
    """Whether ``condition()`` came true within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def recover_posting(probe: ApiProbe, timeout_s: float = 20) -> list[str]:
    """Let the probe submit in phase ``recovered`` until the API takes a job (202), then
    move it to ``after``; the problem, if it never did."""
    probe.phase = "recovered"
    took = wait_until(
        lambda: any(r.status == 202 for r in probe.in_phase("recovered", "post")),
        timeout_s,
    )
    answers = [r.status or r.error for r in probe.in_phase("recovered", "post")]
    probe.phase = "after"
    return [] if took else [f"no POST answered 202 within {timeout_s:g}s; answers {answers}"]


def status_table(results: Iterable[ProbeResult]) -> str:
    """``target phase: status x count`` lines, for messages."""
    counts = Counter(
        (
            r.target,
            r.sent_phase,
            r.done_phase,
            r.status if r.error is None else r.error[:60],
        )
        for r in results
    )
    return "\n".join(
        f"  {t} [{s}->{d}]: {status} x{n}"
        for (t, s, d, status), n in sorted(counts.items(), key=str)
    )
