"""Artifacts: stored images (uploads, thumbnails, stylized faces, cards), by signed URL.

An artifact is served only through the capability URL a job resource gives out
(``?expires=...&sig=...``, see :mod:`refract.access.signing`): no API key is needed, and
without a valid, unexpired signature the answer is 404, as for an artifact that does not
exist. One erased by retention answers 410 Gone. Responses are ``private``: a shared
cache (a venue proxy) must not keep visitors' faces.
"""

from __future__ import annotations

from flask import Blueprint, Response, request

from api.db import get_db
from api.openapi import operations
from api.services import services
from refract.core.errors import Gone, NotFound
from refract.core.ids import parse_id
from refract.core.models import Artifact

bp = Blueprint("artifacts", __name__, url_prefix="/api/v1")


@bp.get("/artifacts/<artifact_id>")
@operations.get_artifact
def get_artifact(artifact_id: str) -> Response:
    """Get an artifact's image bytes, with their Content-Type (by its signed URL)."""
    svc = services()
    key = parse_id(artifact_id, "artifact")
    left = svc.signer.seconds_left(str(key), request.args.get("expires"), request.args.get("sig"))
    if left is None:
        raise NotFound(f"artifact {artifact_id} does not exist")
    artifact = get_db().get(Artifact, key)
    if artifact is None:
        raise NotFound(f"artifact {artifact_id} does not exist")
    if artifact.purged_at is not None:
        raise Gone(f"artifact {artifact_id} was erased (images are kept for a limited time)")
    headers = {
        "ETag": f'"{artifact.sha256}"',
        "Cache-Control": f"private, max-age={left}",
        "X-Content-Type-Options": "nosniff",
    }
    if request.if_none_match.contains_weak(artifact.sha256):
        return Response(status=304, headers=headers)
    try:
        data = svc.store.read(artifact.storage_key)
    except FileNotFoundError as exc:
        raise NotFound(f"artifact {artifact_id} has no stored file") from exc
    return Response(data, mimetype=artifact.content_type, headers=headers)
