"""``refract keys``: the secret once, alone on the last line; only its hash stored."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from launch.keys import run_keys
from launch.migrate import upgrade
from refract.access.keys import find_active_key, hash_secret
from refract.core.models import ApiKey

ROOT = Path(__file__).resolve().parent.parent.parent


def keys(url: str, action: str, **options: object) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run_keys(url, action, out=out, err=err, **options)  # type: ignore[arg-type]
    return code, out.getvalue(), err.getvalue()


def test_create_list_revoke(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'refract.db'}"
    upgrade(url)

    code, out, _ = keys(url, "create", name="booth-1", rate="120/MIN", max_jobs_per_day=500)
    assert code == 0
    secret = out.splitlines()[-1]
    assert secret.startswith("rk_") and len(secret) > 40 and " " not in secret
    engine = create_engine(url)
    with Session(engine) as session:
        stored = session.scalars(select(ApiKey)).one()
        assert stored.secret_hash == hash_secret(secret) and secret not in repr(vars(stored))
        assert (stored.role, stored.rate, stored.max_jobs_per_day) == ("client", "120/min", 500)
        assert find_active_key(session, secret) is not None

    code, out, _ = keys(url, "create", name="staff", role="admin")
    assert code == 0
    code, _, err = keys(url, "create", name="booth-1")
    assert code == 2 and "exists" in err and len(err.splitlines()) == 1
    code, _, err = keys(url, "create", name="booth-3", rate="lots")
    assert code == 2 and "rate" in err

    code, out, _ = keys(url, "list")
    assert code == 0 and "booth-1" in out and "staff" in out and secret not in out

    assert keys(url, "revoke", name="booth-1")[0] == 0
    assert keys(url, "revoke", name="nobody")[0] == 2
    with Session(engine) as session:
        assert find_active_key(session, secret) is None
    engine.dispose()


def test_the_console_command_prints_the_secret_last(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'refract.db'}"
    upgrade(url)
    env = {**os.environ, "REFRACT_DATABASE_URL": url}
    result = subprocess.run(
        [sys.executable, "-m", "launch.cli", "keys", "create", "--name", "kiosk"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    secret = result.stdout.rstrip("\n").splitlines()[-1]
    assert secret.startswith("rk_")
    assert secret not in result.stderr  # never logged
    engine = create_engine(url)
    with Session(engine) as session:
        assert find_active_key(session, secret) is not None
    engine.dispose()
