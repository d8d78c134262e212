"""A real S3-compatible server on 127.0.0.1 for the object-store tests (moto's server:
it speaks the S3 HTTP API, so boto3 talks to it exactly as to AWS, GCS or MinIO)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from moto.server import ThreadedMotoServer

from tests.support.services import free_port

ACCESS_KEY = "test-access-key"
SECRET_KEY = "test-secret-key"
REGION = "us-east-1"


@dataclass(frozen=True)
class S3Server:
    """Where the server listens, and the settings that point Refract at a bucket on it."""

    endpoint_url: str

    def settings(self, bucket: str, prefix: str = "") -> dict[str, str]:
        """``Settings`` values for ``REFRACT_MEDIA_BACKEND=s3`` on this server."""
        return {
            "media_backend": "s3",
            "s3_bucket": bucket,
            "s3_prefix": prefix,
            "s3_endpoint_url": self.endpoint_url,
            "s3_region": REGION,
            "s3_access_key_id": ACCESS_KEY,
            "s3_secret_access_key": SECRET_KEY,
        }


@contextmanager
def s3_server() -> Iterator[S3Server]:
    """Run the server on a free port for the block."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield S3Server(f"http://127.0.0.1:{port}")
    finally:
        server.stop()
