"""The embedded default, as a new user meets it: no configuration at all.

``refract demo`` runs end to end (embedded Redis, SQLite, worker, beat, API, local
backend) and leaves nothing running; ``refract submit`` follows a job on ``refract up``.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.support.services import free_port
from tests.support.stack import RefractStack, clean_environ

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes that contain ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline:
            found.append(cmdline)
    return found


def test_demo_runs_everything_and_leaves_nothing_behind(tmp_path: Path) -> None:
    port = free_port()
    result = subprocess.run(
        [sys.executable, "-m", "launch.cli", "demo", "--port", str(port)],
        cwd=tmp_path,
        # As `.env.example` ships them: a blank key is no key, so the local backend runs.
        env={**clean_environ(), "GEMINI_API_KEY": "", "GOOGLE_API_KEY": ""},
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    first = next(line for line in output.splitlines() if line.startswith("refract: database="))
    assert "database=sqlite:///var/refract.db" in first and "(embedded)" in first, first
    assert "model backend=local" in first
    assert "every feature succeeded" in output
    for feature in ("summary", "comments", "thumbnail", "caption", "stylize", "card"):
        assert re.search(rf"^  {feature}: succeeded \(local/", output, re.MULTILINE), feature

    # Three jobs: the video, the portrait and the group without a frontal face, and
    # both photos end with a card.
    assert len(re.findall(r"^job \S+ \(\w+\): succeeded$", output, re.MULTILINE)) == 3, output
    cards = re.findall(r"the finished card: (\S+)", output)
    assert len(cards) == 2, output[-3000:]
    for card in cards:
        image = Image.open(io.BytesIO(Path(card).read_bytes()))
        assert image.format == "PNG" and min(image.size) >= 1000
    assert "group.png (no frontal face, Korean)" in output
    assert "subject: group" in output and "people: 5" in output
    assert "palette: night" in output  # "서울 야경" chose the card's night palette

    # Nothing outlives the demo: no process of the stack, the port free again.
    assert processes_mentioning(str(tmp_path / "var")) == []
    assert processes_mentioning(f"--port {port}") == []

    # A rerun in the same place works (the database and media directory already exist).
    again = subprocess.run(
        [sys.executable, "-m", "launch.cli", "demo"],
        cwd=tmp_path,
        env=clean_environ(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 0, (again.stdout + again.stderr)[-4000:]


def test_submit_follows_a_photo_on_refract_up(tmp_path: Path) -> None:
    with RefractStack(clean_environ(), tmp_path) as stack:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "launch.cli",
                "submit",
                str(ROOT / "examples" / "astronaut.png"),
                "--api",
                stack.url,
                "--prompt",
                "a birthday card",
                "--out",
                str(tmp_path / "out"),
            ],
            cwd=tmp_path,
            env=clean_environ(),
            capture_output=True,
            text=True,
            timeout=180,
        )
        output = result.stdout + result.stderr
        assert result.returncode == 0, output[-4000:] + stack.logs()[-4000:]
        # Live progress, a line per change when not on a terminal, for every feature.
        for feature in ("caption", "stylize", "card"):
            assert re.search(rf"^{feature}\s+running", output, re.MULTILINE), output
            assert re.search(rf"^{feature}\s+succeeded", output, re.MULTILINE), output
        saved = sorted((tmp_path / "out").rglob("*.png"))
        assert [p.name.split("-", 1)[1] for p in saved] == ["card.png", "stylize.png"]
        # A job that does not succeed makes submit exit non-zero.
        failed = subprocess.run(
            [
                sys.executable,
                "-m",
                "launch.cli",
                "submit",
                str(ROOT / "tests/fixtures/coffee.png"),
                "--api",
                stack.url,
                "--json",
            ],
            cwd=tmp_path,
            env=clean_environ(),
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert failed.returncode == 1, failed.stdout + failed.stderr
        assert '"code": "no_face_detected"' in failed.stdout
