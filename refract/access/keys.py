"""API keys: made, listed, revoked and looked up. Only a hash of each secret is stored.

A secret is ``rk_`` and 43 characters of URL-safe base64 (32 random bytes). With that
much entropy a single SHA-256 is enough: a slow password hash protects secrets people
choose, and these are not guessable. Lookups go by the hash (unique, indexed), so no
secret is ever compared character by character. The secret is shown once, when made.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from refract.access.rates import parse_rate
from refract.core.models import ApiKey, utcnow

SECRET_PREFIX = "rk_"
ROLES = ("client", "admin")


class KeyProblem(ValueError):
    """A key cannot be made or found as asked (duplicate name, unknown name...)."""


def hash_secret(secret: str) -> str:
    """The stored form of ``secret``."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class NewKey:
    """A key just made: its row, and its secret (shown to its owner once, then gone)."""

    key: ApiKey
    secret: str


def create_key(
    session: Session,
    name: str,
    *,
    role: str = "client",
    rate: str | None = None,
    max_jobs_per_day: int | None = None,
) -> NewKey:
    """Make a key named ``name`` (flushed, not committed); its secret is returned once."""
    if not name or len(name) > 64 or not name.isprintable():
        raise KeyProblem("a key's name is 1 to 64 printable characters")
    if role not in ROLES:
        raise KeyProblem(f"role must be one of {', '.join(ROLES)}")
    if rate is not None:
        try:
            rate = str(parse_rate(rate))  # stored normalised
        except ValueError as exc:
            raise KeyProblem(str(exc)) from exc
    if max_jobs_per_day is not None and max_jobs_per_day < 1:
        raise KeyProblem("max jobs per day must be at least 1")
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        name=name,
        role=role,
        prefix=secret[: len(SECRET_PREFIX) + 6],
        secret_hash=hash_secret(secret),
        rate=rate,
        max_jobs_per_day=max_jobs_per_day,
        created_at=utcnow(),
    )
    session.add(key)
    try:
        session.flush()
    except IntegrityError as exc:
        raise KeyProblem(f"a key named {name!r} exists already") from exc
    return NewKey(key, secret)


def list_keys(session: Session) -> list[ApiKey]:
    """Every key, oldest first (revoked ones included)."""
    return list(session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.name)))


def find_key_by_name(session: Session, name: str) -> ApiKey | None:
    """The key named ``name`` (revoked or not), or ``None``."""
    return session.scalars(select(ApiKey).where(ApiKey.name == name)).one_or_none()


def revoke_key(session: Session, name: str) -> ApiKey:
    """Revoke the key named ``name`` (idempotent); ``KeyProblem`` if there is none."""
    key = find_key_by_name(session, name)
    if key is None:
        raise KeyProblem(f"no key is named {name!r}")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
    return key


def find_active_key(session: Session, secret: str) -> ApiKey | None:
    """The unrevoked key whose secret is ``secret``, or ``None``."""
    if not secret.startswith(SECRET_PREFIX) or len(secret) > 128:
        return None
    key = session.scalars(
        select(ApiKey).where(ApiKey.secret_hash == hash_secret(secret))
    ).one_or_none()
    return key if key is not None and key.revoked_at is None else None
