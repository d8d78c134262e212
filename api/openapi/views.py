"""Serving the OpenAPI document and its human-readable page.

The page is ReDoc, whose bundle is vendored in ``static/`` (``redoc.standalone.js``, MIT,
its licences beside it) and served by the app itself: the docs work offline, on a venue
network with no internet, and the page fetches nothing from another host (no CDN, no web
fonts). Its Content-Security-Policy holds it to that: anything the bundle would load
from elsewhere (ReDoc's sidebar logo) is blocked by the browser before any request.
Assets are served under a URL naming their content hash, so they can be cached for a year.
"""

from __future__ import annotations

import functools
import hashlib
from html import escape
from pathlib import Path

from flask import Blueprint, Response, current_app, redirect, send_from_directory

from api.openapi.spec import document
from refract.core.errors import NotFound

OPENAPI_PATH = "/api/v1/openapi.json"
DOCS_PATH = "/api/v1/docs"
ASSETS_PATH = f"{DOCS_PATH}/assets"
STATIC_DIR = Path(__file__).resolve().parent / "static"
# What the page may load: only this origin; inline styles (ReDoc's styled-components) and
# the search index's worker, which ReDoc starts from a blob: URL.
DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
ASSET_MAX_AGE_S = 365 * 24 * 3600
# The files under static/ that are served (the licences are there for readers of the tree).
ASSETS = frozenset({"redoc.standalone.js", "docs.js"})

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Refract API</title>
<style>body {{ margin: 0; padding: 0; }}</style>
</head>
<body>
<div id="redoc" data-spec-url="{spec_url}"></div>
<script src="{redoc_js}"></script>
<script src="{docs_js}"></script>
</body>
</html>
"""

bp = Blueprint("openapi", __name__)


@functools.cache
def asset_url(name: str) -> str:
    """The URL of asset ``name``, naming its content hash so it may be cached for long."""
    digest = hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:12]
    return f"{ASSETS_PATH}/{name}?v={digest}"


@bp.get(OPENAPI_PATH)
def openapi_json() -> Response:
    """The OpenAPI 3.1 document."""
    response = Response(current_app.json.dumps(document()), mimetype="application/json")
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get(DOCS_PATH)
def docs_page() -> Response:
    """Human-readable API documentation (ReDoc, served from this package)."""
    page = PAGE.format(
        spec_url=escape(OPENAPI_PATH),
        redoc_js=escape(asset_url("redoc.standalone.js")),
        docs_js=escape(asset_url("docs.js")),
    )
    response = Response(page, mimetype="text/html")
    response.headers["Content-Security-Policy"] = DOCS_CSP
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get(f"{ASSETS_PATH}/<name>")
def docs_asset(name: str) -> Response:
    """A script of the docs page, cached for a year (its URL changes with its content)."""
    if name not in ASSETS:
        raise NotFound(f"no docs asset {name!r}")
    response = send_from_directory(
        STATIC_DIR, name, mimetype="text/javascript", max_age=ASSET_MAX_AGE_S
    )
    response.headers["Cache-Control"] = f"public, max-age={ASSET_MAX_AGE_S}, immutable"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get(f"{DOCS_PATH}/swagger")
def swagger_page() -> Response:
    """The former Swagger UI page: the docs are one page now (ReDoc), served offline."""
    return redirect(DOCS_PATH, code=301)  # type: ignore[return-value]
