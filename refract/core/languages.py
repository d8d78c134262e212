"""The languages the offline backend writes in, and what it says when it cannot.

The local backend's texts come from templates written for each language in
:data:`WRITTEN`. A job may ask for any language code (Gemini writes them all); for one
the templates do not cover, the local results are in English and say so:
``output_language`` is what they are written in, ``requested_language`` and
``language_note`` appear only when that differs from what the job asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

WRITTEN = ("en", "ko")
FALLBACK = "en"


@dataclass(frozen=True)
class Written:
    """The language a result is written in, for a job that asked for ``requested``."""

    code: str
    requested: str

    @property
    def fell_back(self) -> bool:
        """Whether the requested language is not one the templates cover."""
        return self.code != base_language(self.requested)

    def fields(self) -> dict[str, Any]:
        """The result fields that say which language it is in (and why, on a fallback)."""
        fields: dict[str, Any] = {"output_language": self.code}
        if self.fell_back:
            fields["requested_language"] = self.requested
            fields["language_note"] = (
                f"The offline backend writes {', '.join(WRITTEN)} only; this result is in "
                f"English instead of {self.requested!r}."
            )
        return fields


def base_language(code: str) -> str:
    """The primary subtag of a language code, lower-cased (``ko-KR`` -> ``ko``)."""
    return (code or FALLBACK).replace("_", "-").split("-")[0].strip().lower() or FALLBACK


def written(requested: str) -> Written:
    """The language the local backend writes for a job that asked for ``requested``."""
    code = base_language(requested)
    return Written(code if code in WRITTEN else FALLBACK, requested or FALLBACK)
