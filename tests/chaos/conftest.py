"""The chaos suite: faults injected into a real ``refract up`` while a batch runs.

Each scenario gets a world of its own (:class:`tests.support.chaos.ChaosRig`): a
throwaway Postgres cluster and redis-server on free ports, a fake Gemini, and the stack
pointed at them. Nothing of the machine's Postgres or Redis is used, and everything is
stopped when the test ends, whatever happened.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.chaos.rig import ChaosRig


@pytest.fixture
def chaos(tmp_path: Path) -> Iterator[ChaosRig]:
    """Postgres, Redis and the fake Gemini started; the test starts the stack."""
    with ChaosRig(tmp_path) as rig:
        yield rig
