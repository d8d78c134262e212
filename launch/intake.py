"""``refract intake pause|resume|status``: close or open intake for new jobs.

While paused, ``POST /api/v1/jobs`` answers 503 with ``Retry-After`` in every API process
(the flag is in Redis); reads, event streams and images keep working, and jobs already
taken run to the end.
"""

from __future__ import annotations

import getpass
import sys
from typing import TextIO

import redis

from refract.jobs.admission import PAUSED_KEY, pause_intake, resume_intake
from refract.jobs.progress import redis_from_url


def run_intake(redis_url: str, action: str, *, out: TextIO = sys.stdout) -> int:
    """Carry out ``action`` (pause, resume, status); 0 on success, 2 if Redis is away."""
    client = redis_from_url(redis_url)
    try:
        if action == "pause":
            pause_intake(client, by=f"{getpass.getuser()} (refract intake)")
        elif action == "resume":
            resume_intake(client)
        # Read back (status included) with an error if Redis cannot say.
        state = client.get(PAUSED_KEY)
        print(f"intake: paused by {state}" if state else "intake: open", file=out)
    except redis.RedisError as exc:
        print(f"refract intake: Redis is unreachable ({type(exc).__name__})", file=sys.stderr)
        return 2
    finally:
        client.close()
    return 0
