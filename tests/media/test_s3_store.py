"""The object-store media backend (``REFRACT_MEDIA_BACKEND=s3``) against a real
S3-compatible server: what one process writes another reads, keys are ours, a missing
object reads as a missing file. (The API storing and serving through it:
tests/api/test_api_media_s3.py.)"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from refract.core.settings import Settings
from refract.imaging.s3store import S3Store
from refract.imaging.storage import DiskStore, open_store
from tests.support.s3 import S3Server
from tests.support.services import PostgresServer
from tests.support.stack import clean_environ


@pytest.fixture
def bucket() -> str:
    return f"refract-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def store(s3: S3Server, bucket: str) -> Iterator[S3Store]:
    made = S3Store.from_settings(Settings(**s3.settings(bucket, prefix="media")))  # type: ignore[arg-type]
    made.ensure_bucket()
    yield made
    made.close()


def test_what_one_store_writes_another_reads(s3: S3Server, store: S3Store, bucket: str) -> None:
    artifact = uuid.uuid4()
    key = store.put(artifact, b"\x89PNG fake bytes", "image/png")
    assert key == f"{artifact.hex[:2]}/{artifact.hex}.png"
    # Another process (another host) with the same settings.
    other = S3Store.from_settings(Settings(**s3.settings(bucket, prefix="media")))  # type: ignore[arg-type]
    assert other.read(key) == b"\x89PNG fake bytes"
    head = other.client.head_object(Bucket=bucket, Key=f"media/{key}")
    assert head["ContentType"] == "image/png"
    other.close()


def test_a_missing_object_reads_as_a_missing_file_and_deletes_quietly(store: S3Store) -> None:
    key = store.put(uuid.uuid4(), b"data", "image/jpeg")
    store.delete(key)
    with pytest.raises(FileNotFoundError):
        store.read(key)
    store.delete(key)  # deleting twice is not an error


def test_the_settings_choose_the_store(s3: S3Server, bucket: str, tmp_path: Any) -> None:
    assert isinstance(open_store(Settings(media_dir=tmp_path)), DiskStore)
    chosen = open_store(Settings(**s3.settings(bucket)), max_connections=32)  # type: ignore[arg-type]
    assert isinstance(chosen, S3Store)
    # One connection per worker thread, so that the pool never serialises them.
    assert getattr(chosen.client.meta.config, "max_pool_connections", None) == 32
    chosen.close()
    with pytest.raises(ValueError, match="REFRACT_S3_BUCKET"):
        open_store(Settings(media_backend="s3"))


def test_migrate_makes_the_media_bucket(
    s3: S3Server, bucket: str, postgres_server: PostgresServer, tmp_path: Path
) -> None:
    # A fresh deployment's one-shot `refract migrate` prepares the bucket with the schema.
    env = {
        **clean_environ(),
        **{f"REFRACT_{name.upper()}": value for name, value in s3.settings(bucket).items()},
    }
    with postgres_server.fresh_database("refract_media") as url:
        done = subprocess.run(
            [sys.executable, "-m", "launch.cli", "migrate"],
            cwd=tmp_path,
            env={**env, "REFRACT_DATABASE_URL": url},
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr
    assert f"refract: media bucket {bucket} ready" in done.stdout
    store = S3Store.from_settings(Settings(**s3.settings(bucket)))  # type: ignore[arg-type]
    store.client.head_bucket(Bucket=bucket)  # raises if it was not made
    store.close()
