"""Serving the OpenAPI document and its human-readable pages."""

from __future__ import annotations

from flask import Blueprint, Response, current_app
from spectree.page import PAGE_TEMPLATES

from api.openapi.spec import document, spec

OPENAPI_PATH = "/api/v1/openapi.json"
DOCS_PATH = "/api/v1/docs"

bp = Blueprint("openapi", __name__)


@bp.get(OPENAPI_PATH)
def openapi_json() -> Response:
    """The OpenAPI 3.1 document."""
    response = Response(current_app.json.dumps(document()), mimetype="application/json")
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get(DOCS_PATH)
def docs_page() -> Response:
    """Human-readable API documentation (Redoc, from spectree's page templates)."""
    page = PAGE_TEMPLATES["redoc"].format(spec_url=OPENAPI_PATH, spec_path=DOCS_PATH)
    return Response(page, mimetype="text/html")


@bp.get(f"{DOCS_PATH}/swagger")
def swagger_page() -> Response:
    """Interactive API documentation (Swagger UI, from spectree's page templates)."""
    page = PAGE_TEMPLATES["swagger"].format(
        spec_url=OPENAPI_PATH, spec_path=DOCS_PATH, **spec.config.swagger_oauth2_config()
    )
    return Response(page, mimetype="text/html")
