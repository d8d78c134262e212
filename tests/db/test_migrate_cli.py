"""``refract migrate`` on a database that is missing or out of reach: it creates the
database when the role may, and otherwise says in one line what to do; no traceback."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import make_url

from launch.stack import EXIT_REFUSED
from tests.support.services import PostgresServer, free_port
from tests.support.stack import clean_environ


def migrate(database_url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "launch.cli", "migrate"],
        cwd=cwd,
        env={**clean_environ(), "REFRACT_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=120,
    )


def database_url(server: PostgresServer, name: str, user: str | None = None) -> str:
    url = make_url(server.admin_url).set(drivername="postgresql+psycopg", database=name)
    if user is not None:
        url = url.set(username=user, password=None)
    return url.render_as_string(hide_password=False)


def test_a_missing_database_is_created_and_migrated(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    name = f"refract_new_{uuid.uuid4().hex[:10]}"
    url = database_url(postgres_server, name)
    try:
        result = migrate(url, tmp_path)
        assert result.returncode == 0, result.stderr
        assert f"refract: created the database {url}" in result.stdout
        engine = create_engine(url)
        try:
            assert "jobs" in inspect(engine).get_table_names()
        finally:
            engine.dispose()
        again = migrate(url, tmp_path)  # it exists now: only the schema check
        assert again.returncode == 0 and "created" not in again.stdout, again.stderr
    finally:
        with psycopg.connect(postgres_server.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_role_that_may_not_create_it_is_told_what_to_run(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    role = f"refract_nocreate_{uuid.uuid4().hex[:8]}"
    name = f"refract_none_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_server.admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN NOCREATEDB')
    try:
        result = migrate(database_url(postgres_server, name, user=role), tmp_path)
        assert result.returncode == EXIT_REFUSED, result.stderr
        assert "Traceback" not in result.stderr
        [line] = result.stderr.strip().splitlines()
        assert line.startswith(
            f'refract migrate: database "{name}" does not exist and role "{role}" may not '
            "create it: create it as a role that may (`createdb -h "
        ), line
        assert line.endswith("then run `refract migrate` again")
    finally:
        with psycopg.connect(postgres_server.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP ROLE IF EXISTS "{role}"')


def test_a_server_out_of_reach_is_one_line(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://refract:secret@127.0.0.1:{free_port()}/refract"
    result = migrate(url, tmp_path)
    assert result.returncode == EXIT_REFUSED
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(
        f"refract migrate: cannot connect to the database at "
        f"postgresql+psycopg://refract:***@127.0.0.1:{make_url(url).port}/refract: "
    ), line
    assert "Connection refused" in line and "secret" not in line
