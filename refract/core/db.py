"""One engine and one sessionmaker per process; sessions scoped by their callers.

The API opens a session per request (``api/db.py``), a task a session per run
(``tasks/runner.py``). After a fork (Celery prefork, gunicorn) the inherited pool is
dropped with ``engine.dispose(close=False)`` so that children never share connections.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from refract.core.settings import Settings

_engine: Engine | None = None
_sessionmaker: sessionmaker[Session] | None = None


def build_engine(database_url: str, *, pool_size: int = 10) -> Engine:
    """An engine for ``database_url``; SQLite gets WAL and a busy timeout.

    ``pool_size``: the connections kept open between uses; it should cover the threads
    that use the database at once (a connection past it is closed when it is returned,
    and the next use pays a new connection)."""
    url = make_url(database_url)
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
    elif url.get_backend_name() == "postgresql":
        if url.drivername == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
        kwargs.update(pool_size=pool_size, max_overflow=20, pool_recycle=1800)
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the one writer; the busy timeout makes writers from
    # several worker processes wait for each other instead of failing at once.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def init_engine(settings: Settings) -> Engine:
    """Create this process's engine and sessionmaker (idempotent for the same URL)."""
    global _engine, _sessionmaker
    if _engine is None or str(_engine.url) != str(build_engine_url(settings.database_url)):
        if _engine is not None:
            _engine.dispose()
        # A worker's threads, its heartbeat and progress threads; an API process has
        # fewer threads than that, and a pool opens connections only as they are needed.
        _engine = build_engine(
            settings.database_url, pool_size=max(10, settings.worker_concurrency + 4)
        )
        _sessionmaker = build_sessionmaker(_engine)
    return _engine


def build_engine_url(database_url: str) -> str:
    """The URL an engine would use for ``database_url`` (postgresql means psycopg 3)."""
    url = make_url(database_url)
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    return str(url)


def get_engine() -> Engine:
    """This process's engine; :func:`init_engine` must have run."""
    if _engine is None:
        raise RuntimeError("database engine not initialised; call init_engine(settings)")
    return _engine


def get_sessionmaker() -> sessionmaker[Session]:
    """This process's sessionmaker; :func:`init_engine` must have run."""
    if _sessionmaker is None:
        raise RuntimeError("database engine not initialised; call init_engine(settings)")
    return _sessionmaker


@contextmanager
def session_scope(factory: sessionmaker[Session] | None = None) -> Iterator[Session]:
    """A session (from ``factory``, else this process's) that commits on success and
    rolls back on error."""
    session = (factory or get_sessionmaker())()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


# Callbacks to run once the session's transaction has committed (see on_commit).
_AFTER_COMMIT = "refract_after_commit"


def on_commit(session: Session, callback: Callable[[], object]) -> None:
    """Run ``callback`` once ``session``'s current transaction has committed.

    If the transaction rolls back instead, the callback is dropped: what it would announce
    never happened. Callbacks run in the order they were registered, after the commit
    returned; one that raises is logged by its caller's logger, not here, so each should
    handle its own errors (publishing to Redis does).
    """
    session.info.setdefault(_AFTER_COMMIT, []).append(callback)


def _run_after_commit(session: Session) -> None:
    callbacks: list[Callable[[], object]] = session.info.pop(_AFTER_COMMIT, [])
    for callback in callbacks:
        callback()


def _drop_unrun(session: Session, transaction: SessionTransaction) -> None:
    # The outermost transaction ended without a commit (rolled back, or the session
    # closed): what the callbacks would announce never happened.
    if transaction.parent is None:
        session.info.pop(_AFTER_COMMIT, None)


def build_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """A sessionmaker on ``engine`` whose sessions honour :func:`on_commit`."""
    factory = sessionmaker(engine, expire_on_commit=False)
    event.listen(factory, "after_commit", _run_after_commit)
    event.listen(factory, "after_transaction_end", _drop_unrun)
    return factory


def dispose_after_fork() -> None:
    """Drop connections inherited from the parent without closing the parent's sockets."""
    if _engine is not None:
        _engine.dispose(close=False)


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means the database could not be reached or dropped the connection
    (a restart, a network cut), as opposed to a bug or a constraint: worth a retry later,
    and a 503 to an API client."""
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated
