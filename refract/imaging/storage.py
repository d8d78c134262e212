"""Media storage: image bytes on disk (``REFRACT_MEDIA_DIR``), rows in ``artifacts``.

Tasks carry artifact ids, never image bytes. Files are written atomically (temporary
file, then rename) under a key derived from the artifact id, so a half-written file is
never visible and nothing a client sends chooses a path.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import uuid
from pathlib import Path

from sqlalchemy.orm import Session

from refract.core.errors import NotFound
from refract.core.material import ImageBlob
from refract.core.models import Artifact

_EXTENSIONS = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp"}


class MediaStore:
    """A directory of immutable media files."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        """The file for ``key``; keys are generated here, never taken from clients."""
        return self.root / key

    def put(self, artifact_id: uuid.UUID, data: bytes, content_type: str) -> str:
        """Write ``data`` for ``artifact_id`` and return its storage key."""
        hex_id = artifact_id.hex
        key = f"{hex_id[:2]}/{hex_id}{_EXTENSIONS.get(content_type, '.bin')}"
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
) -> Artifact:
    """Write an image to storage and add its ``Artifact`` row to ``session`` (not committed).

    If the caller's transaction fails, it should call :meth:`MediaStore.delete` with the
    artifact's ``storage_key`` so that nothing is left behind.
    """
    artifact_id = uuid.uuid4()
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
