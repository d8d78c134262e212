"""The batch a chaos scenario submits: video and photo-card jobs, each with its own marker."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import httpx
from PIL import Image

from refract.imaging.faces import crop_largest_face
from refract.imaging.uploads import sanitize_image
from refract.jobs.catalog import JobKind
from tests.support.bodies import make_source
from tests.support.chaos.gemini import ChaosGemini, FeatureKey, sha
from tests.support.images import fixture_bytes

# Upload limits of the API's defaults: sanitising does not depend on them.
_UPLOAD_LIMITS = {"max_bytes": 10 * 1024 * 1024, "max_pixels": 40_000_000}


@dataclass
class BatchJob:
    """A job the scenario submitted."""

    marker: str
    kind: JobKind
    id: str
    features: list[str]
    prompt: str | None = None
    probe: bool = False  # submitted by an API probe during the fault

    def key(self, feature: str) -> FeatureKey:
        """How the fake names ``feature`` of this job."""
        return (self.marker, feature)


def video_marker(index: int) -> str:
    """A marker of fixed width, so that no marker is part of another."""
    return f"CHAOSV{index:03d}Z"


def photo_marker(index: int) -> str:
    """A photo card's marker (see :func:`video_marker`)."""
    return f"CHAOSP{index:03d}Z"


def video_source(marker: str) -> dict[str, Any]:
    """An inline video source whose title (shown to every video feature) carries ``marker``."""
    source = make_source(marker)
    source["title"] = f"{source['title']} [{marker}]"
    return source


def photo_variant(index: int) -> bytes:
    """astronaut.png with a small block of its own colour inside the face crop (not on the
    face), so that each photo card's photo and face crop are bytes of their own."""
    image = Image.open(io.BytesIO(fixture_bytes("astronaut.png"))).convert("RGB")
    colour = ((index * 37 + 11) % 256, (255 - index * 11) % 256, (index * 73 + 5) % 256)
    for x in range(124, 130):
        for y in range(200, 206):
            image.putpixel((x, y), colour)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def photo_inputs(upload: bytes) -> tuple[bytes, bytes]:
    """What the stack will send Gemini for this upload: the stored (sanitised) photo,
    which ``caption`` sends, and its face crop, which ``stylize`` sends."""
    photo = sanitize_image(upload, field="photo", **_UPLOAD_LIMITS).data
    face = crop_largest_face(photo)
    if face is None:
        raise RuntimeError("no face found in the photo variant: the batch cannot run")
    return photo, face.data


def submit_video(client: httpx.Client, marker: str, **fields: Any) -> httpx.Response:
    """POST a video job with an inline source carrying ``marker``."""
    body = {"kind": "video", "source": video_source(marker), "language": "en", **fields}
    return client.post("/api/v1/jobs", json=body)


def submit_batch(
    client: httpx.Client, fake: ChaosGemini, *, videos: int = 8, photos: int = 4
) -> list[BatchJob]:
    """Register and submit ``videos`` video jobs and ``photos`` photo cards, interleaved."""
    plan: list[tuple[JobKind, int]] = [(JobKind.VIDEO, i) for i in range(videos)]
    step = max(1, (videos + photos) // max(photos, 1))
    for n in range(photos):
        plan.insert(min(len(plan), n * step + step - 1), (JobKind.PHOTOCARD, n))
    uploads = {n: photo_variant(n) for n in range(photos)}
    seen: set[str] = set()
    for n, upload in uploads.items():
        photo, face = photo_inputs(upload)
        if sha(photo) in seen or sha(face) in seen:
            raise RuntimeError("two photo variants give the same bytes: jobs would be confused")
        seen |= {sha(photo), sha(face)}
        fake.register_photo(photo_marker(n), photo, face)
    for n in range(videos):
        fake.register_video(video_marker(n))
    jobs: list[BatchJob] = []
    for kind, n in plan:
        if kind == JobKind.VIDEO:
            marker = video_marker(n)
            response = submit_video(client, marker)
            prompt = None
        else:
            marker = photo_marker(n)
            prompt = f"a retro space-mission trading card {marker}"
            response = client.post(
                "/api/v1/jobs",
                data={"kind": "photocard", "prompt": prompt, "language": "en"},
                files={"photo": (f"astronaut-{n}.png", uploads[n], "image/png")},
            )
        if response.status_code != 202:
            raise AssertionError(f"submitting {marker}: {response.status_code} {response.text}")
        created = response.json()
        jobs.append(BatchJob(marker, kind, created["id"], list(created["features"]), prompt=prompt))
    return jobs
