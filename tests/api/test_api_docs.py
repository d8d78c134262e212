"""The API docs page works offline: every asset it uses is served by the app itself."""

from __future__ import annotations

import re
import tomllib
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

from flask.testing import FlaskClient

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "api" / "openapi" / "static"


class _Urls(HTMLParser):
    """Every URL an HTML page refers to (src, href, data-*-url attributes)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value and (name in ("src", "href", "action") or name.endswith("-url")):
                self.urls.append(value)


def page_urls(html: str) -> list[str]:
    parser = _Urls()
    parser.feed(html)
    return parser.urls


def test_the_docs_page_refers_only_to_its_own_origin(client: FlaskClient) -> None:
    response = client.get("/api/v1/docs")
    assert response.status_code == 200 and response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    urls = page_urls(html)
    assert "/api/v1/openapi.json" in urls
    assert any("/redoc.standalone.js" in url for url in urls)
    for url in urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc and url.startswith("/"), url
    # No absolute URL anywhere in the page (a CDN, Google Fonts, ...).
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]", html, re.IGNORECASE), html
    # The browser is held to the same: whatever a script would load from elsewhere.
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert "http" not in csp


def test_every_asset_the_page_uses_is_served_as_javascript(client: FlaskClient) -> None:
    html = client.get("/api/v1/docs").get_data(as_text=True)
    scripts = [url for url in page_urls(html) if url.split("?")[0].endswith(".js")]
    assert len(scripts) == 2
    for url in scripts:
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert asset.mimetype == "text/javascript"
        assert "immutable" in asset.headers["Cache-Control"]
        assert "max-age=31536000" in asset.headers["Cache-Control"]
        name = urlsplit(url).path.rsplit("/", 1)[1]
        assert asset.get_data() == (STATIC / name).read_bytes()
        asset.close()
    # The URL names the content, so a new bundle is a new URL and the long cache is safe.
    assert all("?v=" in url for url in scripts)


def test_unknown_assets_are_problems(client: FlaskClient) -> None:
    for name in ("redoc.LICENSE", "nothing.js", "..%2Fviews.py"):
        response = client.get(f"/api/v1/docs/assets/{name}")
        assert response.status_code == 404, name
        assert response.mimetype == "application/problem+json"


def test_the_vendored_bundle_keeps_its_licence_and_is_packaged() -> None:
    licence = (STATIC / "redoc.LICENSE").read_text()
    assert "MIT License" in licence and "Rebilly" in licence
    assert (STATIC / "redoc.standalone.js.LICENSE.txt").is_file()
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]
    assert "static/*" in package_data["api.openapi"]


def test_the_former_swagger_page_leads_to_the_docs(client: FlaskClient) -> None:
    response = client.get("/api/v1/docs/swagger")
    assert response.status_code == 301
    assert response.headers["Location"].endswith("/api/v1/docs")
