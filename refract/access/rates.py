"""Request rates written as ``"<count>/<unit>"``: ``30/min``, ``5/sec``, ``1000/hour``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

_UNITS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60}
_UNITS |= {"h": 3600, "hour": 3600, "d": 86400, "day": 86400}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*([a-z]+)\s*$")


@dataclass(frozen=True)
class Rate:
    """At most ``count`` requests per ``window_s`` seconds."""

    count: int
    window_s: int

    def __str__(self) -> str:
        unit = {1: "sec", 60: "min", 3600: "hour", 86400: "day"}.get(self.window_s)
        return f"{self.count}/{unit}" if unit else f"{self.count}/{self.window_s}s"


# Every counted request parses its key's rate: a handful of distinct texts, kept parsed.
@lru_cache(maxsize=1024)
def parse_rate(text: str) -> Rate:
    """``"120/min"`` as a :class:`Rate`; ``ValueError`` naming the expected form otherwise."""
    match = _RATE.match(text.lower())
    if match is None or match.group(2) not in _UNITS:
        raise ValueError(f"{text!r} is not a rate: write <count>/<sec|min|hour|day>, e.g. 120/min")
    count = int(match.group(1))
    if count < 1:
        raise ValueError(f"{text!r}: the count must be at least 1")
    return Rate(count, _UNITS[match.group(2)])
