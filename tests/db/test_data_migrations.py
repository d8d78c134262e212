"""Data migrations keep what was stored before them meaning the same thing."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, create_engine, text

from launch.migrate import alembic_config, upgrade
from tests.support.services import PostgresServer

PHOTO, PORTRAIT, THUMB = (str(uuid.uuid4()) for _ in range(3))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'refract.db'}"
    else:
        postgres: PostgresServer = request.getfixturevalue("postgres_server")
        with postgres.fresh_database("refract_datamig") as url:
            yield url


def _insert_0001_rows(engine: Engine) -> tuple[str, str]:
    """A photo card and a video job as revision 0001 stored them: URLs beside the ids."""
    card_id, video_id = uuid.uuid4(), uuid.uuid4()
    with engine.begin() as conn:
        for job_id, kind, data in (
            (
                card_id,
                "photocard",
                {
                    "prompt": "hi",
                    "photo_artifact_id": PHOTO,
                    "photo_url": f"/api/v1/artifacts/{PHOTO}",
                },
            ),
            (video_id, "video", {"url": "https://www.youtube.com/watch?v=9bZkp7q19f0"}),
        ):
            conn.execute(
                text(
                    "INSERT INTO jobs (id, kind, status, progress, language, input, version,"
                    " enqueue_count, created_at, updated_at) VALUES (:id, :kind, 'succeeded',"
                    " 1.0, 'en', :input, 3, 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ),
                {
                    "id": job_id.hex if engine.dialect.name == "sqlite" else job_id,
                    "kind": kind,
                    "input": json.dumps(data),
                },
            )
        results = [
            (
                card_id,
                "stylize",
                {
                    "artifact_id": PORTRAIT,
                    "content_type": "image/png",
                    "width": 512,
                    "height": 512,
                    "note": None,
                    "image_url": f"/api/v1/artifacts/{PORTRAIT}",
                },
            ),
            (
                video_id,
                "thumbnail",
                {
                    "description": "a dancer",
                    "thumbnail": {"image_url": f"/api/v1/artifacts/{THUMB}", "size": "maxres"},
                },
            ),
        ]
        for position, (job_id, feature, result) in enumerate(results):
            conn.execute(
                text(
                    "INSERT INTO feature_runs (job_id, feature, position, status, progress,"
                    " attempts, result, updated_at) VALUES (:job, :feature, :position,"
                    " 'succeeded', 1.0, 1, :result, CURRENT_TIMESTAMP)"
                ),
                {
                    "job": job_id.hex if engine.dialect.name == "sqlite" else job_id,
                    "feature": feature,
                    "position": position,
                    "result": json.dumps(result),
                },
            )
    return str(card_id), str(video_id)


def _decode(value: Any) -> Any:
    # SQLite hands JSON back as text, Postgres as objects.
    return json.loads(value) if isinstance(value, str) else value


def _stored(engine: Engine) -> tuple[Any, dict[str, Any]]:
    with engine.connect() as conn:
        card_input = conn.execute(text("SELECT input FROM jobs WHERE kind = 'photocard'")).scalar()
        rows = conn.execute(text("SELECT feature, result FROM feature_runs")).all()
    return _decode(card_input), {feature: _decode(result) for feature, result in rows}


def test_0002_drops_stored_urls_and_keeps_the_ids(database_url: str) -> None:
    upgrade(database_url, "0001")
    engine = create_engine(database_url)
    try:
        _insert_0001_rows(engine)
        upgrade(database_url, "0002")
        card_input, results = _stored(engine)
        assert card_input == {"prompt": "hi", "photo_artifact_id": PHOTO}
        assert "image_url" not in results["stylize"]
        assert results["stylize"]["artifact_id"] == PORTRAIT
        # The thumbnail's URL was its only reference: it becomes an id.
        assert results["thumbnail"]["thumbnail"] == {"artifact_id": THUMB, "size": "maxres"}

        command.downgrade(alembic_config(database_url), "0001")
        card_input, results = _stored(engine)
        assert card_input["photo_url"] == f"/api/v1/artifacts/{PHOTO}"
        assert results["stylize"]["image_url"] == f"/api/v1/artifacts/{PORTRAIT}"
        assert results["thumbnail"]["thumbnail"]["image_url"] == f"/api/v1/artifacts/{THUMB}"
    finally:
        engine.dispose()
