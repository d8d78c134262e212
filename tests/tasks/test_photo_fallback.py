"""Nobody leaves empty-handed: photo card jobs without a usable frontal face, run through
the real feature functions on the local backend, against Postgres and Redis.

A tilted head and a group from afar are restyled as found (``stylize`` says which); a
photo with nobody in it fails ``stylize`` with ``no_face_detected`` and the card is made
from the photo itself. Every job ends with a card, in the job's language.
"""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from refract.core.models import Artifact, FeatureRun, Job
from refract.core.settings import Settings
from refract.gateway.local import LocalBackend
from refract.imaging.storage import read_image, store_image
from refract.jobs.catalog import JobKind
from refract.jobs.store import NewJob, add_job
from tasks.caption import describe
from tasks.card import compose
from tasks.runner import execute_feature
from tasks.services import WorkerServices
from tasks.stylize import restyle

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
HANGUL = re.compile(r"[\uac00-\ud7a3]")
WORK: dict[str, Callable[..., Any]] = {"caption": describe, "stylize": restyle, "card": compose}


@pytest.fixture
def backend(worker_settings: Settings) -> LocalBackend:
    """The real offline backend instead of the stub."""
    return LocalBackend(worker_settings)


def photo_job(
    sessions: sessionmaker[Session],
    services: WorkerServices,
    photo: str,
    language: str,
    prompt: str,
) -> str:
    """A photo card job with ``photo`` stored as the API stores it."""
    features = ["caption", "stylize", "card"]
    with sessions() as session:
        job = add_job(session, NewJob(JobKind.PHOTOCARD, features, language, {"prompt": prompt}))
        session.commit()
        job_id = job.id
    with services.session() as session:
        artifact = store_image(
            session,
            services.store,
            job_id=job_id,
            role="photo",
            data=(FIXTURES / photo).read_bytes(),
            content_type="image/png",
        )
        session.flush()
        session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(input={"prompt": prompt, "photo_artifact_id": str(artifact.id)})
        )
    return str(job_id)


def run_job(services: WorkerServices, job_id: str) -> dict[str, FeatureRun]:
    for feature in ("caption", "stylize", "card"):
        execute_feature(services, job_id, feature, f"{feature}-1", WORK[feature])
    with services.session() as session:
        found = session.scalars(select(FeatureRun).where(FeatureRun.job_id == uuid.UUID(job_id)))
        runs = {run.feature: run for run in found}
        session.expunge_all()
        return runs


def card_image(services: WorkerServices, run: FeatureRun) -> Image.Image:
    assert run.result is not None
    with services.session() as session:
        blob = read_image(session, services.store, uuid.UUID(run.result["artifact_id"]))
    return Image.open(io.BytesIO(blob.data))


@pytest.mark.parametrize(
    ("photo", "subject", "people"),
    [("profile.png", "person", 1), ("group.png", "group", 5), ("astronaut.png", "face", 1)],
)
def test_people_without_a_usable_face_are_restyled_and_get_a_card(
    sessions: sessionmaker[Session],
    services: WorkerServices,
    photo: str,
    subject: str,
    people: int,
) -> None:
    job_id = photo_job(sessions, services, photo, "en", "stars")
    runs = run_job(services, job_id)
    assert {name: run.status for name, run in runs.items()} == dict.fromkeys(
        ("caption", "stylize", "card"), "succeeded"
    )
    stylized = runs["stylize"].result
    assert stylized is not None
    assert (stylized["subject"], stylized["people"]) == (subject, people)
    assert stylized["message"] and stylized["found_by"]
    # A face is cropped head and shoulders; otherwise the people are cut from the photo.
    assert ("where the people are" in stylized["note"]) == (subject != "face")
    card = runs["card"].result
    assert card is not None and card["portrait"] == "stylize"
    assert card["design"]["motifs"] == ["stars"]
    assert card_image(services, runs["card"]).size == (1200, 1800)
    with services.session() as session:
        job = session.get(Job, uuid.UUID(job_id))
        assert job is not None and job.status == "succeeded"


def test_a_photo_with_nobody_in_it_still_ends_with_a_card_made_from_the_photo(
    sessions: sessionmaker[Session], services: WorkerServices
) -> None:
    job_id = photo_job(sessions, services, "coffee.png", "en", "ocean")
    runs = run_job(services, job_id)
    assert runs["caption"].status == "succeeded"
    assert (runs["stylize"].status, runs["stylize"].error_code) == ("failed", "no_face_detected")
    assert "card is made from the photo itself" in (runs["stylize"].error_message or "")
    card = runs["card"]
    assert card.status == "succeeded" and card.result is not None
    assert card.result["portrait"] == "photo" and "photo itself" in card.result["note"]
    assert card.result["design"]["palette"] == "ocean"
    with services.session() as session:
        roles = sorted(
            a.role
            for a in session.scalars(select(Artifact).where(Artifact.job_id == uuid.UUID(job_id)))
        )
        job = session.get(Job, uuid.UUID(job_id))
        # Partial: stylize did fail, and says so; but the visitor has a card.
        assert job is not None and job.status == "partial"
    assert roles == ["card", "photo"]


def test_a_korean_job_is_korean_in_every_result(
    sessions: sessionmaker[Session], services: WorkerServices
) -> None:
    job_id = photo_job(sessions, services, "group.png", "ko", "서울 야경")
    runs = run_job(services, job_id)
    caption, stylized, card = (runs[n].result for n in ("caption", "stylize", "card"))
    assert caption is not None and stylized is not None and card is not None
    for text in (
        caption["caption"],
        caption["description"],
        caption["mood"],
        caption["setting"],
        stylized["message"],
        stylized["note"],
        card["note"],
    ):
        assert HANGUL.search(text), text
    assert card["output_language"] == "ko"
    assert card["design"]["palette"] == "night"
