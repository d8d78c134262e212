"""Who is calling: the :class:`Principal` a request was authenticated as.

``api/auth.py`` authenticates each request (``Authorization: Bearer <key>``) and stores
the principal on :data:`flask.g`; views and the helpers they call ask
:func:`current_principal` and decide with :meth:`Principal.may_see`. With
``REFRACT_AUTH=off`` every request is :data:`ANONYMOUS`, which sees everything, as an
admin does.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

from flask import g

from refract.core.errors import Forbidden, Unauthorized

Role = Literal["client", "admin"]


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: an API key (its id, name and role), or anonymous."""

    key_id: uuid.UUID | None
    name: str
    role: Role
    # Submissions per window for this key ("<count>/<sec|min|hour>"), None: the default.
    rate: str | None = None
    max_jobs_per_day: int | None = None

    @property
    def is_admin(self) -> bool:
        """Whether this caller sees and may act on every job."""
        return self.role == "admin"

    def may_see(self, owner_key_id: uuid.UUID | None) -> bool:
        """Whether a job owned by ``owner_key_id`` is visible to this caller: its owner's
        or an admin's (to anyone else it does not exist)."""
        return self.is_admin or (self.key_id is not None and owner_key_id == self.key_id)


# Every request when REFRACT_AUTH=off (the API then listens on loopback only).
ANONYMOUS = Principal(key_id=None, name="anonymous", role="admin")


def current_principal() -> Principal:
    """The principal of the current request; 401 if the request was not authenticated."""
    found = g.get("principal")
    if not isinstance(found, Principal):
        raise Unauthorized()
    return found


def require_admin(what: str = "this") -> Principal:
    """The current principal if it is an admin (an admin key, or anyone with auth off);
    403 for a client key, 401 if the request was not authenticated."""
    principal = current_principal()
    if not principal.is_admin:
        raise Forbidden(f"{what} needs an admin key")
    return principal
