"""Versioned prompt files, one per feature: ``refract/prompts/<feature>.v<N>.md``.

A file has a ``## system`` section and a ``## user`` section; ``$name`` placeholders in
the user section are filled from the feature's inputs. The highest version on disk is
used, and its name (``summary.v1``) is stored with every result it produced.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from string import Template

PROMPT_DIR = Path(__file__).with_name("prompts")
_FILE = re.compile(r"^(?P<feature>[a-z_]+)\.v(?P<version>\d+)\.md$")
_SECTION = re.compile(r"^## (system|user)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Prompt:
    """A feature's prompt at one version."""

    feature: str
    version: str
    system: str
    user: str

    def render(self, **values: object) -> str:
        """The user section with ``$placeholders`` filled (unknown ones left as they are)."""
        return Template(self.user).safe_substitute({k: str(v) for k, v in values.items()})


@cache
def load_prompt(feature: str) -> Prompt:
    """The newest version of ``feature``'s prompt; ``LookupError`` if it has none."""
    versions = []
    for path in PROMPT_DIR.glob(f"{feature}.v*.md"):
        match = _FILE.match(path.name)
        if match and match["feature"] == feature:
            versions.append((int(match["version"]), path))
    if not versions:
        raise LookupError(f"no prompt file for feature {feature!r} in {PROMPT_DIR}")
    number, path = max(versions)
    return parse_prompt(feature, f"{feature}.v{number}", path.read_text(encoding="utf-8"))


def parse_prompt(feature: str, version: str, text: str) -> Prompt:
    """Split a prompt file into its system and user sections."""
    parts = _SECTION.split(text)
    sections: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        sections[name] = body.strip()
    if "system" not in sections or "user" not in sections:
        raise ValueError(f"prompt {version} needs a '## system' and a '## user' section")
    return Prompt(feature, version, sections["system"], sections["user"])


def data_block(label: str, value: object) -> str:
    """``value`` as data for a prompt: JSON between ``<<<LABEL`` and ``LABEL>>>``.

    Text from strangers (a video's title, a transcript, comments, a caption, a visitor's
    wish) reaches the model only this way. JSON keeps it on one line with its quotes
    escaped, and the markers' own ``<<<`` and ``>>>`` are escaped inside it, so no value
    can close its block early and smuggle instructions out of it.
    """
    text = json.dumps(value, ensure_ascii=False)
    text = text.replace("<<<", "\\u003c\\u003c\\u003c").replace(">>>", "\\u003e\\u003e\\u003e")
    return f"<<<{label}\n{text}\n{label}>>>"
