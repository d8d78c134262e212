"""Ids as clients send them: a UUID in a URL, or nothing found."""

from __future__ import annotations

import uuid

from refract.core.errors import NotFound


def parse_id(raw: str, what: str) -> uuid.UUID:
    """The UUID ``raw`` names; ``NotFound`` for a malformed one, as for an unknown id.

    A malformed id is answered like a missing one, so that a client learns nothing from
    the difference.
    """
    try:
        return uuid.UUID(raw)
    except ValueError as exc:
        raise NotFound(f"{what} {raw} does not exist") from exc
