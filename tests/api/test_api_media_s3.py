"""The API with its media in a bucket (``REFRACT_MEDIA_BACKEND=s3``), against a real
S3-compatible server: an uploaded photo lands in the bucket, is served back through its
signed URL, and is erased from the bucket with its job."""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable, Iterator

import pytest
from flask import Flask

from refract.core.settings import Settings
from refract.imaging.s3store import S3Store
from tests.support.s3 import S3Server, s3_server


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with s3_server() as server:
        yield server


def test_a_photo_goes_to_the_bucket_is_served_from_it_and_erased_with_its_job(
    s3: S3Server, make_app: Callable[..., Flask], astronaut_png: bytes
) -> None:
    bucket = f"refract-api-{uuid.uuid4().hex[:12]}"
    values = s3.settings(bucket, prefix="media")
    store = S3Store.from_settings(Settings(**values))  # type: ignore[arg-type]
    store.ensure_bucket()
    client = make_app(**values).test_client()

    created = client.post(
        "/api/v1/jobs",
        data={"kind": "photocard", "photo": (io.BytesIO(astronaut_png), "me.png", "image/png")},
        content_type="multipart/form-data",
    )
    assert created.status_code == 202, created.get_json()
    job = created.get_json()
    objects = store.client.list_objects_v2(Bucket=bucket, Prefix="media/")
    assert objects["KeyCount"] == 1
    served = client.get(job["input"]["photo_url"])
    assert served.status_code == 200
    assert served.mimetype == "image/png"
    assert served.get_data()[:8] == b"\x89PNG\r\n\x1a\n"
    served.close()

    assert client.delete(f"/api/v1/jobs/{job['id']}").status_code == 204
    assert store.client.list_objects_v2(Bucket=bucket, Prefix="media/")["KeyCount"] == 0
    store.close()
