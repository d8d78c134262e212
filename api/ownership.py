"""Who may see a job: its owner (the key that created it) or an admin; to anyone else it
does not exist (404, exactly as an unknown job).

A job's owner never changes, so it is kept in a bounded in-process cache: the fast read
path (a job answered from its Redis snapshot) checks ownership without a database round
trip after the first time.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from typing import Literal

from sqlalchemy import select

from api.db import get_db
from api.principal import current_principal
from refract.access.keys import find_key_by_name
from refract.core.errors import Forbidden, NotFound
from refract.core.ids import parse_id
from refract.core.models import Job

# Job ids whose owner is remembered per process (an id and a UUID each: a few MB).
OWNERS_MAX = 100_000


class OwnerCache:
    """job id -> owner key id (``None``: made with auth off), least recently used out."""

    def __init__(self, size: int = OWNERS_MAX) -> None:
        self.size = size
        self._owners: OrderedDict[uuid.UUID, uuid.UUID | None] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, job_id: uuid.UUID) -> tuple[bool, uuid.UUID | None]:
        """``(known, owner)``."""
        with self._lock:
            if job_id not in self._owners:
                return False, None
            self._owners.move_to_end(job_id)
            return True, self._owners[job_id]

    def put(self, job_id: uuid.UUID, owner: uuid.UUID | None) -> None:
        """Remember ``job_id``'s owner."""
        with self._lock:
            self._owners[job_id] = owner
            self._owners.move_to_end(job_id)
            while len(self._owners) > self.size:
                self._owners.popitem(last=False)

    def forget(self, job_id: uuid.UUID) -> None:
        """Drop ``job_id`` (it was deleted)."""
        with self._lock:
            self._owners.pop(job_id, None)


_cache = OwnerCache()


def owner_cache() -> OwnerCache:
    """This process's cache of job owners."""
    return _cache


def authorize_job(raw_job_id: str) -> uuid.UUID:
    """The id of a job the current caller may see; ``NotFound`` for a malformed id, an
    unknown job, or another key's job (the same answer, so nothing is revealed)."""
    job_id = parse_id(raw_job_id, "job")
    principal = current_principal()
    if principal.is_admin:
        return job_id
    known, owner = _cache.get(job_id)
    if not known:
        found = get_db().execute(select(Job.owner_key_id).where(Job.id == job_id)).one_or_none()
        if found is None:
            raise NotFound(f"job {raw_job_id} does not exist")
        owner = found[0]
        _cache.put(job_id, owner)
    if not principal.may_see(owner):
        raise NotFound(f"job {raw_job_id} does not exist")
    return job_id


# The owner no job has.
NO_KEY = uuid.UUID(int=0)


def listing_owner(key_name: str | None) -> uuid.UUID | Literal["any"] | None:
    """Whose jobs the current caller's listing shows (``owner`` of
    :func:`refract.jobs.store.list_jobs`): a client key its own; an admin every job, or
    those of the key named ``key_name`` (revoked keys included). Only an admin may name
    a key (403 otherwise); a name no key has matches no job, as any filter would."""
    principal = current_principal()
    if not principal.is_admin:
        if key_name is not None:
            raise Forbidden("only an admin key may list the jobs of another key")
        return principal.key_id
    if key_name is None:
        return "any"
    key = find_key_by_name(get_db(), key_name)
    # No key has the nil UUID (keys get random ones): an unknown name lists nothing.
    return key.id if key is not None else NO_KEY
