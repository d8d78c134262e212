"""Media storage: image bytes in a :class:`MediaStore`, rows in ``artifacts``.

Two stores: the local disk (:class:`DiskStore`, ``REFRACT_MEDIA_DIR``, the embedded
default) and an S3-compatible bucket (:class:`refract.imaging.s3store.S3Store`,
``REFRACT_MEDIA_BACKEND=s3``) for stacks whose API and workers run on different hosts;
:func:`open_store` picks the configured one. Tasks carry artifact ids, never image bytes.
Keys derive from the artifact id (:func:`media_key`), so nothing a client sends chooses a
path; a write is atomic (a half-written file is never visible).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from sqlalchemy.orm import Session

from refract.core.errors import NotFound
from refract.core.material import ImageBlob
from refract.core.models import Artifact

if TYPE_CHECKING:
    from refract.core.settings import Settings

_EXTENSIONS = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp"}


class MediaStore(Protocol):
    """Where image bytes live: put, read and delete by storage key."""

    def put(self, artifact_id: uuid.UUID, data: bytes, content_type: str) -> str:
        """Write ``data`` for ``artifact_id`` and return its storage key."""

    def read(self, key: str) -> bytes:
        """The bytes stored under ``key``; ``FileNotFoundError`` if there are none."""

    def delete(self, key: str) -> None:
        """Remove ``key`` if it exists."""


def media_key(artifact_id: uuid.UUID, content_type: str) -> str:
    """The storage key of an artifact: spread over 256 prefixes, typed by extension."""
    hex_id = artifact_id.hex
    return f"{hex_id[:2]}/{hex_id}{_EXTENSIONS.get(content_type, '.bin')}"


def open_store(settings: Settings, *, max_connections: int = 10) -> MediaStore:
    """The media store ``settings`` configure (``max_connections``: threads using it)."""
    if settings.media_backend == "s3":
        from refract.imaging.s3store import S3Store

        return S3Store.from_settings(settings, max_connections=max_connections)
    return DiskStore(settings.media_dir)


class DiskStore:
    """A directory of immutable media files (the embedded default)."""

    def __init__(self, root: Path) -> None:
        """Keep files under ``root``."""
        self.root = Path(root)

    def path(self, key: str) -> Path:
        """The file for ``key``; keys are generated here, never taken from clients."""
        return self.root / key

    def put(self, artifact_id: uuid.UUID, data: bytes, content_type: str) -> str:
        """Write ``data`` for ``artifact_id`` and return its storage key."""
        key = media_key(artifact_id, content_type)
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return key

    def read(self, key: str) -> bytes:
        """The bytes stored under ``key``."""
        return self.path(key).read_bytes()

    def delete(self, key: str) -> None:
        """Remove ``key`` if it exists (used to undo a write whose commit failed)."""
        self.path(key).unlink(missing_ok=True)


def store_image(
    session: Session,
    store: MediaStore,
    *,
    job_id: uuid.UUID | None,
    role: str,
    data: bytes,
    content_type: str,
    width: int | None = None,
    height: int | None = None,
    artifact_id: uuid.UUID | None = None,
) -> Artifact:
    """Write an image to storage and add its ``Artifact`` row to ``session`` (not committed).

    ``artifact_id``: the id to give it, for a caller that must point at the artifact
    before adding it (a new one otherwise). If the caller's transaction fails, it should
    call :meth:`MediaStore.delete` with the artifact's ``storage_key`` so that nothing is
    left behind.
    """
    artifact_id = artifact_id or uuid.uuid4()
    key = store.put(artifact_id, data, content_type)
    artifact = Artifact(
        id=artifact_id,
        job_id=job_id,
        role=role,
        content_type=content_type,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        width=width,
        height=height,
        storage_key=key,
    )
    session.add(artifact)
    return artifact


def read_image(session: Session, store: MediaStore, artifact_id: uuid.UUID) -> ImageBlob:
    """The bytes and type of an artifact; ``NotFound`` if the row or file is missing."""
    artifact = session.get(Artifact, artifact_id)
    if artifact is None:
        raise NotFound(f"artifact {artifact_id} does not exist")
    try:
        return ImageBlob(store.read(artifact.storage_key), artifact.content_type)
    except FileNotFoundError as exc:
        raise NotFound(f"artifact {artifact_id} has no stored file") from exc
