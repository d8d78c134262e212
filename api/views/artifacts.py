"""Artifacts: stored images (uploads, thumbnails, stylized faces, cards), by id."""

from __future__ import annotations

from flask import Blueprint, Response, request

from api.db import get_db
from api.openapi import operations
from api.services import services
from refract.core.errors import NotFound
from refract.core.ids import parse_id
from refract.core.models import Artifact

bp = Blueprint("artifacts", __name__, url_prefix="/api/v1")

# Artifacts never change once written: a client may keep one forever.
IMMUTABLE = "public, max-age=31536000, immutable"


@bp.get("/artifacts/<artifact_id>")
@operations.get_artifact
def get_artifact(artifact_id: str) -> Response:
    """Get an artifact's image bytes, with their Content-Type."""
    artifact = get_db().get(Artifact, parse_id(artifact_id, "artifact"))
    if artifact is None:
        raise NotFound(f"artifact {artifact_id} does not exist")
    headers = {
        "ETag": f'"{artifact.sha256}"',
        "Cache-Control": IMMUTABLE,
        "X-Content-Type-Options": "nosniff",
    }
    if request.if_none_match.contains_weak(artifact.sha256):
        return Response(status=304, headers=headers)
    try:
        data = services().store.read(artifact.storage_key)
    except FileNotFoundError as exc:
        raise NotFound(f"artifact {artifact_id} has no stored file") from exc
    return Response(data, mimetype=artifact.content_type, headers=headers)
