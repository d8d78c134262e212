"""Bad input gets a clear problem+json 4xx and changes nothing: no row, no file, no message."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask

from tests.support.bodies import inline_source, video_body
from tests.support.images import data_url, png_bomb, small_image, truncated_jpeg
from tests.support.jobs import media_files, table_counts


def photocard(photo: bytes | None = b"", **fields: Any) -> dict[str, Any]:
    """Multipart fields for a photo card (``photo=None`` leaves the file out)."""
    form: dict[str, Any] = {"kind": "photocard", **fields}
    if photo is not None:
        form["photo"] = (io.BytesIO(photo), "upload.bin", "image/jpeg")
    return form


ASTRONAUT = (Path(__file__).resolve().parent.parent / "fixtures" / "astronaut.png").read_bytes()


@dataclass
class Case:
    """One bad request and the problem it must produce."""

    status: int
    error_field: str | None  # named in `errors`, or None when `errors` is not expected
    json: Any = None
    data: Any = None
    raw: bytes | None = None
    content_type: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    detail_has: str = ""


CASES: dict[str, Case] = {
    "malformed JSON": Case(
        400,
        None,
        raw=b'{"kind": "video", "url": ',
        content_type="application/json",
        detail_has="not valid JSON",
    ),
    "JSON NaN": Case(
        400, None, raw=b'{"kind": "video", "x": NaN}', content_type="application/json"
    ),
    "JSON array body": Case(422, "body", json=[1, 2]),
    "unknown kind": Case(
        422,
        "kind",
        json={"kind": "podcast", "url": "https://youtu.be/9bZkp7q19f0"},
        detail_has="podcast",
    ),
    "missing kind": Case(422, "kind", json={"url": "https://youtu.be/9bZkp7q19f0"}),
    "photocard as JSON": Case(
        415, "kind", json={"kind": "photocard", "prompt": "hi"}, detail_has="multipart/form-data"
    ),
    "video as multipart": Case(
        415,
        "kind",
        data={"kind": "video", "url": "https://youtu.be/x"},
        detail_has="application/json",
    ),
    "unknown feature": Case(
        422, "features", json=video_body(features=["summary", "vibes"]), detail_has="vibes"
    ),
    "wrong-kind feature": Case(
        422, "features", json=video_body(features=["caption"]), detail_has="not a video feature"
    ),
    "card without its inputs": Case(
        422,
        "features",
        data=photocard(ASTRONAUT, features="card,caption"),
        detail_has="needs stylize",
    ),
    "non-YouTube URL": Case(
        422,
        "url",
        json=video_body(url="https://vimeo.com/76979871"),
        detail_has="not a YouTube video link",
    ),
    "YouTube channel URL": Case(422, "url", json=video_body(url="https://www.youtube.com/@psy")),
    "url and source": Case(422, "source", json=video_body(source=inline_source())),
    "neither url nor source": Case(422, "url", json={"kind": "video"}),
    "unknown field": Case(422, "feature", json=video_body(feature=["summary"])),
    "bad language": Case(422, "language", json=video_body(language="english please")),
    "negative transcript time": Case(
        422,
        "source.transcript.0.start",
        json={"kind": "video", "source": {"transcript": [{"start": -1, "text": "x"}]}},
    ),
    "thumbnail as a web URL": Case(
        422,
        "source.thumbnail",
        json={"kind": "video", "source": inline_source("https://example.com/t.png")},
    ),
    "prompt of 501 characters": Case(
        422, "prompt", data=photocard(ASTRONAUT, prompt="x" * 501), detail_has="500"
    ),
    "no photo": Case(422, "photo", data=photocard(None, prompt="hello")),
    "photo as a text field": Case(422, "photo", data={"kind": "photocard", "photo": "me.jpg"}),
    "text file as photo": Case(415, "photo", data=photocard(b"hello, I am a text file\n" * 20)),
    "GIF photo": Case(415, "photo", data=photocard(small_image("GIF"))),
    "truncated JPEG": Case(422, "photo", data=photocard(truncated_jpeg()), detail_has="truncated"),
    "oversized photo": Case(
        413, "photo", data=photocard(ASTRONAUT), settings={"max_upload_bytes": 50_000}
    ),
    "oversized body": Case(
        413, None, data=photocard(ASTRONAUT), settings={"max_body_bytes": 100_000}
    ),
    "decompression bomb": Case(422, "photo", data=photocard(png_bomb()), detail_has="pixels"),
    "too many pixels for the settings": Case(
        422, "photo", data=photocard(ASTRONAUT), settings={"max_image_pixels": 100_000}
    ),
    "bad thumbnail data URL": Case(
        415,
        "source.thumbnail",
        json={"kind": "video", "source": inline_source(data_url(b"not an image" * 10))},
    ),
    "text/plain body": Case(
        415, None, raw=b"kind=video", content_type="text/plain", detail_has="Content-Type"
    ),
    "urlencoded form": Case(
        415, None, raw=b"kind=photocard", content_type="application/x-www-form-urlencoded"
    ),
    "no content type": Case(415, None, raw=b"{}", content_type=""),
    "multipart without boundary": Case(
        400, None, raw=b"--x\r\n", content_type="multipart/form-data"
    ),
    "idempotency key too long": Case(422, "Idempotency-Key", json=video_body()),
    # Postgres stores NUL in neither text nor JSONB: refused up front, never a 500.
    "NUL in the title": Case(
        422,
        "source.title",
        json={"kind": "video", "source": {**inline_source(), "title": "Gangnam\x00Style"}},
        detail_has="NUL",
    ),
    "NUL in a transcript line": Case(
        422,
        "source.transcript.1.text",
        json={
            "kind": "video",
            "source": {
                **inline_source(),
                "transcript": [{"start": 0.0, "text": "ok"}, {"start": 1.0, "text": "a\x00b"}],
            },
        },
    ),
    "NUL in a comment's author": Case(
        422,
        "source.comments.0.author",
        json={
            "kind": "video",
            "source": {**inline_source(), "comments": [{"text": "hi", "author": "\x00"}]},
        },
    ),
    "NUL in the language": Case(422, "language", json={**video_body(), "language": "en\x00"}),
    "NUL in the prompt": Case(422, "prompt", data=photocard(ASTRONAUT, prompt="stars\x00")),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_refused_with_a_problem_and_leaves_nothing_behind(
    name: str, make_app: Callable[..., Flask], media_dir: Path, redis_broker: redis.Redis[bytes]
) -> None:
    case = CASES[name]
    client = make_app(**case.settings).test_client()
    headers = {"Idempotency-Key": "k" * 256} if name == "idempotency key too long" else {}
    if case.json is not None:
        response = client.post("/api/v1/jobs", json=case.json, headers=headers)
    elif case.data is not None:
        response = client.post(
            "/api/v1/jobs", data=case.data, headers=headers, content_type="multipart/form-data"
        )
    else:
        response = client.post(
            "/api/v1/jobs", data=case.raw, headers={**headers, "Content-Type": case.content_type}
        )

    assert response.status_code == case.status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["status"] == case.status
    assert problem["type"] == "about:blank"
    assert problem["title"] and problem["detail"]
    assert case.detail_has in problem["detail"]
    if case.error_field is not None:
        fields = [e["field"] for e in problem["errors"]]
        assert case.error_field in fields, problem
        assert all(e["message"] for e in problem["errors"])
    assert table_counts() == {"jobs": 0, "feature_runs": 0, "artifacts": 0}
    assert media_files(media_dir) == []
    assert redis_broker.dbsize() == 0


def test_a_failed_commit_removes_the_stored_photo(
    make_app: Callable[..., Flask], media_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.orm import Session

    def broken_commit(self: Session) -> None:
        raise RuntimeError("database went away")

    app = make_app()
    monkeypatch.setattr(Session, "commit", broken_commit)
    response = app.test_client().post("/api/v1/jobs", data=photocard(ASTRONAUT))
    monkeypatch.undo()

    assert response.status_code == 500
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["detail"] == "an unexpected error occurred; quote the reference"
    assert problem["code"] == "internal_error"
    assert problem["reference"] == response.headers["X-Request-ID"]
    assert "database went away" not in response.get_data(as_text=True)
    assert table_counts() == {"jobs": 0, "feature_runs": 0, "artifacts": 0}
    assert media_files(media_dir) == []
