"""Database faults on demand, for the task-layer tests: commits that fail as they do when
Postgres restarts under a running worker."""

from __future__ import annotations

import threading

from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker


class DatabaseFaults:
    """Makes commits on the test's sessions fail as a dropped database connection does.

    ``fail_next(n)`` arms the next ``n`` commits made by the calling thread (a worker's
    heartbeat thread commits too, and must not take the failures meant for the task);
    ``failed`` counts them. The error is SQLAlchemy's ``OperationalError``, the one a
    Postgres restart raises.
    """

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.remaining = 0
        self.failed = 0
        self.thread: int | None = None
        event.listen(sessions, "before_commit", self._before_commit)
        self._sessions = sessions

    def fail_next(self, count: int) -> None:
        """Fail the next ``count`` commits of the calling thread."""
        self.remaining = count
        self.thread = threading.get_ident()

    def _before_commit(self, _session: Session) -> None:
        if self.remaining > 0 and threading.get_ident() == self.thread:
            self.remaining -= 1
            self.failed += 1
            raise OperationalError(
                "COMMIT", None, ConnectionError("server closed the connection unexpectedly")
            )

    def close(self) -> None:
        """Stop failing commits."""
        event.remove(self._sessions, "before_commit", self._before_commit)
