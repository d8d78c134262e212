"""The media layer: the object-store backend against a real S3-compatible server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.s3 import S3Server, s3_server


@pytest.fixture(scope="session")
def s3() -> Iterator[S3Server]:
    """An S3-compatible server on 127.0.0.1 for the whole run."""
    with s3_server() as server:
        yield server
