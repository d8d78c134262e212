"""Running Alembic from Python: ``refract migrate``, ``refract up`` and the tests use this.

Before upgrading, :func:`ensure_database` makes sure there is a database to upgrade: a
Postgres database that does not exist yet is created through the server's ``postgres``
maintenance database when the role may create databases; otherwise, and when the server
cannot be reached at all, :class:`StartupRefused` says in one line what is wrong and what
to run, instead of the driver's traceback through Alembic.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
from alembic import command
from alembic.config import Config
from psycopg import sql
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError

from refract.core.errors import StartupRefused

ROOT = Path(__file__).resolve().parent.parent
# How long to wait for the server before saying it cannot be reached.
CONNECT_TIMEOUT_S = 10


def alembic_config(database_url: str) -> Config:
    """An Alembic config for ``database_url`` using the project's migrations folder."""
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    # ConfigParser treats % specially; URLs may contain escaped characters.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> bool:
    """Bring the schema at ``database_url`` up to ``revision``, creating the database first
    if it may (:func:`ensure_database`); True when it created it."""
    created = ensure_database(database_url)
    try:
        command.upgrade(alembic_config(database_url), revision)
    except OperationalError as exc:
        raise StartupRefused(
            f"cannot migrate the database at {_shown(make_url(database_url))}: "
            f"{_one_line(exc.orig or exc)}"
        ) from None
    return created


def ensure_database(database_url: str) -> bool:
    """Make sure the database at ``database_url`` exists; True when this call created it.

    SQLite makes its file itself (the engine makes its folder). For Postgres, a database
    that does not exist is created when the role may; :class:`StartupRefused` otherwise.
    """
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql" or not url.database:
        return False
    try:
        with psycopg.connect(_libpq(url), connect_timeout=CONNECT_TIMEOUT_S):
            return False
    except psycopg.OperationalError as exc:
        reason = _one_line(exc)
        if f'database "{url.database}" does not exist' not in reason:
            raise StartupRefused(
                f"cannot connect to the database at {_shown(url)}: {reason}"
            ) from None
    _create(url)
    return True


def _create(url: URL) -> None:
    """CREATE DATABASE through the maintenance database, or say in a line what to run."""
    name = url.database
    assert name is not None
    manual = (
        f"create it as a role that may (`createdb -h {url.host or 'localhost'} "
        f"-p {url.port or 5432} -U postgres {name}`, or CREATE DATABASE in psql), "
        "then run `refract migrate` again"
    )
    try:
        with psycopg.connect(
            _libpq(url.set(database="postgres")),
            connect_timeout=CONNECT_TIMEOUT_S,
            autocommit=True,  # CREATE DATABASE cannot run inside a transaction
        ) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.errors.DuplicateDatabase:
        return  # made meanwhile by another process (two `refract up` at once): fine
    except psycopg.errors.InsufficientPrivilege:
        raise StartupRefused(
            f'database "{name}" does not exist and role "{url.username}" may not create it: '
            + manual
        ) from None
    except psycopg.Error as exc:
        raise StartupRefused(
            f'database "{name}" does not exist and could not be created ({_one_line(exc)}): '
            + manual
        ) from None


def _libpq(url: URL) -> str:
    """A libpq connection string for a SQLAlchemy Postgres URL (any driver name)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _shown(url: URL) -> str:
    """The URL without its password, for messages."""
    return url.render_as_string(hide_password=True)


def _one_line(exc: BaseException) -> str:
    """The driver's message on one line (libpq's span several, with tabs)."""
    return " ".join(str(exc).split())
