"""API keys for tests, made as ``refract keys create`` makes them."""

from __future__ import annotations

from refract.access.keys import create_key, revoke_key
from refract.core.db import session_scope


def make_key(name: str, role: str = "client", rate: str | None = None, **extra: int) -> str:
    """Create a key in the app's database; its secret."""
    with session_scope() as session:
        return create_key(session, name, role=role, rate=rate, **extra).secret


def revoke(name: str) -> None:
    """Revoke the key ``name``."""
    with session_scope() as session:
        revoke_key(session, name)


def bearer(secret: str) -> dict[str, str]:
    """The header that carries ``secret``."""
    return {"Authorization": f"Bearer {secret}"}
