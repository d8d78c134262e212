"""Findings: every check of a scenario, reported at once rather than at the first failure."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator


class Findings:
    """The scenario's checks, each with the problems it found; raises all at once."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.results: dict[str, list[str]] = {}
        self.notes: list[str] = []

    def check(self, name: str, problems: Iterable[str]) -> None:
        """Record check ``name`` and its problems (none: it passed)."""
        self.results.setdefault(name, []).extend(problems)

    def note(self, text_: str) -> None:
        """Something worth knowing that is not a failure (timings, context)."""
        self.notes.append(text_)
        print(f"[chaos] {text_}", flush=True)

    @property
    def failed(self) -> dict[str, list[str]]:
        """The checks that found problems."""
        return {name: found for name, found in self.results.items() if found}

    def assert_ok(self, context: Callable[[], str] = lambda: "") -> None:
        """Raise one AssertionError naming every failed check (and ``context()``)."""
        passed = [name for name, found in self.results.items() if not found]
        print(f"[chaos] {self.title}: passed checks: {passed}", flush=True)
        if not self.failed:
            return
        lines = [f"{self.title}: {len(self.failed)} of {len(self.results)} checks failed"]
        for name, problems in self.failed.items():
            lines.append(f"- FAILED {name} ({len(problems)}):")
            lines += [f"    {p}" for p in problems[:15]]
            if len(problems) > 15:
                lines.append(f"    ... and {len(problems) - 15} more")
        lines.append(f"passed: {', '.join(passed) or 'none'}")
        lines += [f"note: {n}" for n in self.notes]
        extra = context()
        if extra:
            lines.append(extra)
        raise AssertionError("\n".join(lines))


@contextlib.contextmanager
def timed(findings: Findings, label: str) -> Iterator[None]:
    """Note how long the block took."""
    started = time.monotonic()
    try:
        yield
    finally:
        findings.note(f"{label}: {time.monotonic() - started:.1f}s")
