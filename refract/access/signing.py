"""Capability URLs for artifacts: signed, expiring, good without an API key.

A job's resource names each image by its path, ``/api/v1/artifacts/<id>``; that path
alone opens nothing. The API signs it when it answers (:func:`sign_urls`), appending
``?expires=<unix seconds>&sig=<HMAC-SHA256 of id and expiry>``, so that a kiosk screen or
an ``<img>`` tag can show the image while the URL lasts, and nobody can make one up.

Expiries are rounded up to a quarter of the TTL, so every answer within that quarter
carries the same URL (bodies and ETags stay stable while a client polls); a URL lasts
between three quarters of the TTL and the whole of it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

ARTIFACT_PATH = "/api/v1/artifacts/"
# Fields of a resource that hold an artifact path to sign.
URL_FIELDS = ("image_url", "photo_url")
# A member of a JSON object whose name is one of URL_FIELDS and whose value is a string,
# as ``json.dumps`` writes it (``"name": "value"``). A name cannot be matched inside
# another string: a quote there is always escaped, and the pattern needs a bare one.
_URL_MEMBER = re.compile(r'"(' + "|".join(URL_FIELDS) + r')": "((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Signer:
    """Signs and checks artifact URLs with ``secret``, valid for ``ttl_s``."""

    # Kept out of repr: a logged Signer must not give the secret away.
    secret: bytes = field(repr=False)
    ttl_s: int
    # The time now, in Unix seconds (tests move it; every ``now=None`` reads it).
    clock: Callable[[], float] = field(default=time.time, compare=False, repr=False)

    @property
    def step_s(self) -> int:
        """How long one signed URL is handed out unchanged."""
        return max(1, self.ttl_s // 4)

    def epoch(self, now: float | None = None) -> int:
        """The number of the current step (it changes when the URLs do)."""
        return int((self.clock() if now is None else now) // self.step_s)

    def expiry(self, now: float | None = None) -> int:
        """The expiry given to URLs signed now."""
        return (self.epoch(now) * self.step_s) + self.ttl_s

    def signature(self, artifact_id: str, expires: int) -> str:
        """The signature of ``artifact_id`` until ``expires``."""
        message = f"{artifact_id}:{expires}".encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()[:32]

    def sign(self, artifact_id: str, now: float | None = None) -> str:
        """The capability URL of ``artifact_id``."""
        expires = self.expiry(now)
        query = urlencode({"expires": expires, "sig": self.signature(artifact_id, expires)})
        return f"{ARTIFACT_PATH}{artifact_id}?{query}"

    def seconds_left(
        self, artifact_id: str, expires: str | None, sig: str | None, now: float | None = None
    ) -> int | None:
        """How long a URL with ``expires`` and ``sig`` stays valid; ``None`` if it is not
        valid (missing, tampered with, signed with another secret, or expired)."""
        if not expires or not sig or not expires.isdigit() or len(expires) > 12:
            return None
        left = int(expires) - int(self.clock() if now is None else now)
        if left <= 0 or left > self.ttl_s:
            return None
        if not hmac.compare_digest(self.signature(artifact_id, int(expires)), sig):
            return None
        return left

    def sign_urls(self, value: Any, now: float | None = None) -> Any:
        """A copy of ``value`` with every artifact path in :data:`URL_FIELDS` signed."""
        if isinstance(value, dict):
            signed = {key: self.sign_urls(item, now) for key, item in value.items()}
            for key in URL_FIELDS:
                path = value.get(key)
                if isinstance(path, str) and path.startswith(ARTIFACT_PATH):
                    signed[key] = self.sign(path[len(ARTIFACT_PATH) :].split("?", 1)[0], now)
            return signed
        if isinstance(value, list):
            return [self.sign_urls(item, now) for item in value]
        return value

    def sign_json(self, text: str, now: float | None = None) -> str:
        """``text`` (JSON as ``json.dumps`` writes it) with its artifact paths signed:
        the same text as ``json.dumps(sign_urls(json.loads(text)))``, without parsing
        a body that names no artifact (the common case of the API's read path)."""
        if ARTIFACT_PATH not in text:
            return text
        when = self.clock() if now is None else now

        def signed(match: re.Match[str]) -> str:
            path = json.loads(f'"{match.group(2)}"')
            if not path.startswith(ARTIFACT_PATH):
                return match.group(0)
            url = self.sign(path[len(ARTIFACT_PATH) :].split("?", 1)[0], when)
            return f'"{match.group(1)}": {json.dumps(url)}'

        return _URL_MEMBER.sub(signed, text)
