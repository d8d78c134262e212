"""Media in an object store over the S3 API: AWS S3, Google Cloud Storage's
interoperability endpoint, MinIO.

The local disk (``refract.imaging.storage.DiskStore``) is the embedded default; once
workers run on more than one host, an uploaded photo written by the API on one machine
must be readable by a worker on another, and that is what a bucket gives. Objects are
immutable and keyed as on disk (``<2 hex>/<artifact id>.<ext>`` under an optional
prefix), so nothing a client sends chooses a key. Every call carries its own timeouts and
a bounded number of retries (the threads pool has no time limits of its own).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from refract.imaging.storage import media_key

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from refract.core.settings import Settings

# Error codes S3-compatible servers use for an object that is not there.
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})


class S3Store:
    """A bucket of immutable media objects (the ``MediaStore`` of a multi-host stack)."""

    def __init__(self, client: S3Client, bucket: str, prefix: str = "") -> None:
        """Store under ``prefix`` in ``bucket`` through ``client``."""
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""

    @classmethod
    def from_settings(cls, settings: Settings, *, max_connections: int = 10) -> S3Store:
        """A store as ``REFRACT_S3_*`` configure it; credentials come from the settings or,
        when unset, boto3's usual chain (environment, instance role...)."""
        if not settings.s3_bucket:
            raise ValueError("REFRACT_MEDIA_BACKEND=s3 needs REFRACT_S3_BUCKET")
        config = Config(
            connect_timeout=5,
            read_timeout=30,
            retries={"max_attempts": 3, "mode": "standard"},
            # One connection per worker thread: a smaller pool would serialise them.
            max_pool_connections=max_connections,
            s3={"addressing_style": "path" if settings.s3_endpoint_url else "auto"},
        )
        key_id = settings.s3_access_key_id
        secret = settings.s3_secret_access_key
        client = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            region_name=settings.s3_region,
            aws_access_key_id=key_id.get_secret_value() if key_id else None,
            aws_secret_access_key=secret.get_secret_value() if secret else None,
            config=config,
        )
        return cls(client, settings.s3_bucket, settings.s3_prefix)

    def object_key(self, key: str) -> str:
        """The object's name in the bucket for a storage key."""
        return self.prefix + key

    def put(self, artifact_id: uuid.UUID, data: bytes, content_type: str) -> str:
        """Write ``data`` for ``artifact_id`` and return its storage key."""
        key = media_key(artifact_id, content_type)
        self.client.put_object(
            Bucket=self.bucket, Key=self.object_key(key), Body=data, ContentType=content_type
        )
        return key

    def read(self, key: str) -> bytes:
        """The bytes stored under ``key``; ``FileNotFoundError`` if there are none."""
        try:
            found = self.client.get_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                raise FileNotFoundError(key) from exc
            raise
        return found["Body"].read()

    def delete(self, key: str) -> None:
        """Remove ``key`` if it exists (deleting a missing object is not an error in S3)."""
        self.client.delete_object(Bucket=self.bucket, Key=self.object_key(key))

    def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist (``refract migrate``, tests, dev)."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            self.client.create_bucket(Bucket=self.bucket)

    def close(self) -> None:
        """Release the client's connection pool."""
        self.client.close()
