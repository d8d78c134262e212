"""``refract submit`` says what it could not read and why, and where the API was not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from launch.cli import main
from launch.targets import Target, read_target
from tests.support.services import free_port

ROOT = Path(__file__).resolve().parents[2]
# Nothing listens here: a message about the target must come before any request.
NOWHERE = f"http://127.0.0.1:{free_port()}"


def submit_error(capsys: pytest.CaptureFixture[str], target: str) -> str:
    code = main(["submit", target, "--api", NOWHERE])
    captured = capsys.readouterr()
    assert code == 2, captured
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("refract submit: ")
    return lines[0].removeprefix("refract submit: ")


def test_a_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.jpg")
    assert submit_error(capsys, missing).startswith(f"{missing}: no such file (give a YouTube")


def test_a_text_file_is_not_json(capsys: pytest.CaptureFixture[str]) -> None:
    readme = str(ROOT / "README.md")
    message = submit_error(capsys, readme)
    assert message.startswith(f"{readme}: not an image, and not JSON: Expecting value at line 1")


def test_json_that_is_not_a_video_source(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for content in ('{"name": "x"}', "[1, 2]", '"a string"'):
        path = tmp_path / "other.json"
        path.write_text(content)
        message = submit_error(capsys, str(path))
        assert message == (
            f"{path}: JSON, but not a video source: it needs at least one of the fields "
            "title, description, transcript, comments, thumbnail"
        )
    path.write_text('{"title": "t", "transcrpt": []}')
    assert "unknown field(s) transcrpt" in submit_error(capsys, str(path))
    path.write_text('{"title": "t", "thumbnail": "nothing.jpg"}')
    assert "thumbnail file" in submit_error(capsys, str(path))


def test_a_file_named_as_an_image_that_is_not_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    fake = tmp_path / "photo.jpg"
    fake.write_text("hello")
    assert submit_error(capsys, str(fake)) == (
        f"{fake}: not an image (its content is not JPEG, PNG or WebP)"
    )
    gif = tmp_path / "anim.gif"
    gif.write_bytes(b"GIF89a" + bytes(20))
    assert "a GIF image; the API takes JPEG, PNG or WebP" in submit_error(capsys, str(gif))
    binary = tmp_path / "blob.bin"
    binary.write_bytes(b"\xff\xfe\x00\x81" * 8)
    assert "not an image and not a JSON text file" in submit_error(capsys, str(binary))
    assert "is a directory" in submit_error(capsys, str(tmp_path))


def test_the_api_not_running(capsys: pytest.CaptureFixture[str]) -> None:
    message = submit_error(capsys, str(ROOT / "examples" / "astronaut.png"))
    assert message.startswith(f"cannot reach the API at {NOWHERE} (")
    assert "`refract up`" in message and "`make demo`" in message and "--api" in message
    # The same for a link, which is sent as it is.
    message = submit_error(capsys, "https://www.youtube.com/watch?v=dQw4w9WgXcQ")
    assert message.startswith(f"cannot reach the API at {NOWHERE}")


def test_what_each_target_is_read_as(tmp_path: Path) -> None:
    assert read_target("https://youtu.be/dQw4w9WgXcQ") == Target(url="https://youtu.be/dQw4w9WgXcQ")
    assert read_target("youtu.be/dQw4w9WgXcQ").url == "youtu.be/dQw4w9WgXcQ"
    photo = read_target(str(ROOT / "examples" / "astronaut.png"))
    assert photo.photo is not None and photo.mime == "image/png"
    # By content, not by name: a PNG saved as .jpg is sent as the PNG it is.
    renamed = tmp_path / "really-a-png.jpg"
    renamed.write_bytes((ROOT / "examples" / "astronaut.png").read_bytes())
    assert read_target(str(renamed)).mime == "image/png"
    source = read_target(str(ROOT / "examples" / "video.json")).source
    assert source is not None and source["title"]
    inline = tmp_path / "source.json"
    inline.write_text(json.dumps({"title": "t", "thumbnail": str(renamed)}))
    thumbnail = read_target(str(inline)).source
    assert thumbnail is not None and thumbnail["thumbnail"].startswith("data:image/png;base64,")
