"""``refract keys create|list|revoke``: API keys, managed from the command line.

The secret of a new key is printed once, alone on the last line of the output, so a
script can take it with ``tail -n 1``; it is never stored (only its hash) nor logged.
"""

from __future__ import annotations

import sys
from typing import TextIO

from sqlalchemy.orm import Session

from refract.access.keys import KeyProblem, create_key, list_keys, revoke_key
from refract.core.db import build_engine, build_sessionmaker, session_scope
from refract.core.models import ApiKey


def run_keys(
    database_url: str,
    action: str,
    *,
    name: str | None = None,
    role: str = "client",
    rate: str | None = None,
    max_jobs_per_day: int | None = None,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """Carry out ``action`` (create, list, revoke); 0 on success, 2 with a one-line reason."""
    engine = build_engine(database_url)
    try:
        with session_scope(build_sessionmaker(engine)) as session:
            if action == "create":
                assert name is not None
                made = create_key(
                    session, name, role=role, rate=rate, max_jobs_per_day=max_jobs_per_day
                )
                _describe(made.key, out)
                print(
                    "the secret, shown this once (send it as 'Authorization: Bearer <key>'):",
                    file=out,
                )
                print(made.secret, file=out)
            elif action == "revoke":
                assert name is not None
                key = revoke_key(session, name)
                print(f"revoked {key.name} ({key.prefix}...)", file=out)
            else:
                _table(session, out)
    except KeyProblem as exc:
        print(f"refract keys: {exc}", file=err)
        return 2
    finally:
        engine.dispose()
    return 0


def _describe(key: ApiKey, out: TextIO) -> None:
    print(f"created key {key.name}: role {key.role}, prefix {key.prefix}", file=out)
    if key.rate:
        print(f"submission rate: {key.rate}", file=out)
    if key.max_jobs_per_day:
        print(f"at most {key.max_jobs_per_day} jobs a day", file=out)


def _table(session: Session, out: TextIO) -> None:
    keys = list_keys(session)
    if not keys:
        print("no keys yet: refract keys create --name <name>", file=out)
        return
    print(
        f"{'name':<24} {'role':<7} {'prefix':<10} {'rate':<10} {'per day':<8} "
        f"{'created':<20} revoked",
        file=out,
    )
    for key in keys:
        created = key.created_at.strftime("%Y-%m-%d %H:%M:%S")
        revoked = key.revoked_at.strftime("%Y-%m-%d %H:%M:%S") if key.revoked_at else "-"
        print(
            f"{key.name:<24} {key.role:<7} {key.prefix:<10} {key.rate or 'default':<10} "
            f"{key.max_jobs_per_day or '-'!s:<8} {created:<20} {revoked}",
            file=out,
        )
