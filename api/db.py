"""A database session per request, opened on first use and closed at teardown."""

from __future__ import annotations

from flask import Flask, g
from sqlalchemy.orm import Session

from refract.core.db import get_sessionmaker


def get_db() -> Session:
    """This request's session (created on first use)."""
    if "db" not in g:
        g.db = get_sessionmaker()()
    session: Session = g.db
    return session


def close_db(_exc: BaseException | None = None) -> None:
    """Close this request's session, if one was opened; uncommitted work is rolled back.

    Views that stream call it before streaming, so no connection is held for minutes.
    """
    session: Session | None = g.pop("db", None)
    if session is not None:
        session.close()


def init_app(app: Flask) -> None:
    """Close the session when each request's app context ends."""
    app.teardown_appcontext(close_db)
