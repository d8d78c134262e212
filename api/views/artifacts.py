"""Artifacts: stored images (uploads, thumbnails, stylized faces, cards), by id."""

from __future__ import annotations

import uuid

from flask import Blueprint, Response, request
from spectree import Response as Responses

from api.db import get_db
from api.openapi import documented
from api.schemas import Problem
from api.services import services
from api.views.jobs import IF_NONE_MATCH
from refract.core.errors import NotFound
from refract.core.models import Artifact

bp = Blueprint("artifacts", __name__, url_prefix="/api/v1")

# Artifacts never change once written: a client may keep one forever.
IMMUTABLE = "public, max-age=31536000, immutable"
_IMAGE = {"schema": {"type": "string", "format": "binary"}}


@bp.get("/artifacts/<artifact_id>")
@documented(
    operation_id="getArtifact",
    tags=["artifacts"],
    path_parameters={"artifact_id": "The artifact's id (a UUID)."},
    resp=Responses("HTTP_304", HTTP_404=(Problem, "No such artifact.")),
    extra={
        "parameters": [IF_NONE_MATCH],
        "responses": {
            "200": {
                "description": "The image bytes.",
                "headers": {
                    "ETag": {"description": "The image's SHA-256.", "schema": {"type": "string"}}
                },
                "content": {"image/png": _IMAGE, "image/jpeg": _IMAGE, "image/webp": _IMAGE},
            },
            "304": {"description": "Not modified (If-None-Match matched the ETag)."},
        },
    },
)
def get_artifact(artifact_id: str) -> Response:
    """Get an artifact's image bytes, with their Content-Type."""
    try:
        key = uuid.UUID(artifact_id)
    except ValueError as exc:
        raise NotFound(f"artifact {artifact_id} does not exist") from exc
    artifact = get_db().get(Artifact, key)
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
