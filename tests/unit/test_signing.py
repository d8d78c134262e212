"""Capability URLs for artifacts: made, checked, refused when tampered with or expired."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from refract.access.signing import Signer

NOW = 1_800_000_000.0
ARTIFACT = "1b19369a-442e-480b-af92-9ddd64f5496d"


def parts(url: str) -> tuple[str, str, str]:
    split = urlsplit(url)
    query = parse_qs(split.query)
    return split.path.rsplit("/", 1)[1], query["expires"][0], query["sig"][0]


def test_a_signed_url_opens_its_artifact_until_it_expires() -> None:
    signer = Signer(b"secret", ttl_s=3600)
    artifact, expires, sig = parts(signer.sign(ARTIFACT, NOW))
    assert artifact == ARTIFACT

    left = signer.seconds_left(artifact, expires, sig, NOW)
    assert left is not None and 2700 < left <= 3600
    assert signer.seconds_left(artifact, expires, sig, int(expires) - 1) == 1
    assert signer.seconds_left(artifact, expires, sig, int(expires)) is None  # expired


def test_tampering_or_another_secret_is_refused() -> None:
    signer = Signer(b"secret", ttl_s=3600)
    artifact, expires, sig = parts(signer.sign(ARTIFACT, NOW))
    other = "2b19369a-442e-480b-af92-9ddd64f5496d"

    assert signer.seconds_left(other, expires, sig, NOW) is None
    assert signer.seconds_left(artifact, str(int(expires) + 60), sig, NOW) is None
    flipped = sig[:-1] + ("1" if sig[-1] == "0" else "0")
    assert signer.seconds_left(artifact, expires, flipped, NOW) is None
    assert signer.seconds_left(artifact, expires, None, NOW) is None
    assert signer.seconds_left(artifact, None, sig, NOW) is None
    assert signer.seconds_left(artifact, "-5", sig, NOW) is None
    assert Signer(b"another", 3600).seconds_left(artifact, expires, sig, NOW) is None
    # A signature can't stretch a URL beyond the TTL in force.
    assert Signer(b"secret", 600).seconds_left(artifact, expires, sig, NOW) is None


def test_urls_stay_the_same_within_a_quarter_of_the_ttl() -> None:
    signer = Signer(b"secret", ttl_s=3600)
    start = signer.epoch(NOW) * signer.step_s
    assert signer.sign(ARTIFACT, start) == signer.sign(ARTIFACT, start + 899)
    assert signer.sign(ARTIFACT, start) != signer.sign(ARTIFACT, start + 900)
    assert signer.epoch(start) != signer.epoch(start + 900)


def test_sign_urls_signs_artifact_paths_wherever_they_are() -> None:
    signer = Signer(b"secret", ttl_s=3600)
    resource: dict[str, Any] = {
        "input": {"photo_url": f"/api/v1/artifacts/{ARTIFACT}", "prompt": "stars"},
        "features": {
            "card": {
                "result": {"artifact_id": ARTIFACT, "image_url": f"/api/v1/artifacts/{ARTIFACT}"}
            },
            "summary": {"result": {"tldr": "/api/v1/artifacts/not-a-url-field"}},
        },
        "list": [{"image_url": f"/api/v1/artifacts/{ARTIFACT}"}],
    }

    signed = signer.sign_urls(resource, NOW)

    expected = signer.sign(ARTIFACT, NOW)
    assert signed["input"]["photo_url"] == expected
    assert signed["features"]["card"]["result"]["image_url"] == expected
    assert signed["list"][0]["image_url"] == expected
    assert signed["features"]["summary"] == resource["features"]["summary"]
    assert resource["input"]["photo_url"] == f"/api/v1/artifacts/{ARTIFACT}"  # a copy


def test_the_clock_decides_validity_and_the_secret_stays_out_of_repr() -> None:
    now = [NOW]
    signer = Signer(b"do-not-print-me", ttl_s=3600, clock=lambda: now[0])
    artifact, expires, sig = parts(signer.sign(ARTIFACT))
    assert signer.epoch() == signer.epoch(NOW)
    assert signer.seconds_left(artifact, expires, sig) == int(expires) - int(NOW)

    now[0] = float(expires)

    assert signer.seconds_left(artifact, expires, sig) is None
    assert "do-not-print-me" not in repr(signer)
