"""artifact URLs are made when the job resource is built, not stored

Results and job inputs name images by artifact id; the URL beside each id is added when
the job resource is built (refract/jobs/resource.py). This removes the URLs stored before:
``image_url`` in results (at the top, and in the thumbnail's ``thumbnail`` object) and
``photo_url`` in photo card inputs. Downgrading writes them back from the ids.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 12:30:00
"""

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0002'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ARTIFACTS = "/api/v1/artifacts/"

# Lightweight tables: only the columns this data migration reads and writes, typed as
# the models type them (JSONB on Postgres).
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
jobs = sa.table("jobs", sa.column("id", sa.Uuid()), sa.column("input", _JSON))
feature_runs = sa.table("feature_runs", sa.column("id", sa.Integer()), sa.column("result", _JSON))


def _rewrite(table: sa.TableClause, column: str, change: Callable[[Any], Any]) -> None:
    """Apply ``change`` to every non-null ``column`` value and write back what changed."""
    bind = op.get_bind()
    key = table.c.id
    rows = bind.execute(sa.select(key, table.c[column]).where(table.c[column].is_not(None)))
    for row_id, value in rows.all():
        changed = change(value)
        if changed != value:
            bind.execute(sa.update(table).where(key == row_id).values({column: changed}))


def _without_result_urls(result: Any) -> Any:
    if not isinstance(result, dict):
        return result
    result = {k: v for k, v in result.items() if not (k == "image_url" and "artifact_id" in result)}
    thumbnail = result.get("thumbnail")
    if isinstance(thumbnail, dict) and "image_url" in thumbnail:
        url = thumbnail["image_url"]
        rest = {k: v for k, v in thumbnail.items() if k != "image_url"}
        if "artifact_id" not in rest and isinstance(url, str) and url.startswith(ARTIFACTS):
            rest["artifact_id"] = url.removeprefix(ARTIFACTS)
        result["thumbnail"] = rest
    return result


def _with_result_urls(result: Any) -> Any:
    if not isinstance(result, dict):
        return result
    result = dict(result)
    if isinstance(result.get("artifact_id"), str):
        result["image_url"] = ARTIFACTS + result["artifact_id"]
    thumbnail = result.get("thumbnail")
    if isinstance(thumbnail, dict) and isinstance(thumbnail.get("artifact_id"), str):
        result["thumbnail"] = {**thumbnail, "image_url": ARTIFACTS + thumbnail["artifact_id"]}
    return result


def _without_photo_url(data: Any) -> Any:
    if not isinstance(data, dict) or "photo_url" not in data:
        return data
    return {k: v for k, v in data.items() if k != "photo_url"}


def _with_photo_url(data: Any) -> Any:
    if not isinstance(data, dict) or not isinstance(data.get("photo_artifact_id"), str):
        return data
    return {**data, "photo_url": ARTIFACTS + data["photo_artifact_id"]}


def upgrade() -> None:
    """Apply this revision."""
    _rewrite(feature_runs, "result", _without_result_urls)
    _rewrite(jobs, "input", _without_photo_url)


def downgrade() -> None:
    """Revert this revision."""
    _rewrite(feature_runs, "result", _with_result_urls)
    _rewrite(jobs, "input", _with_photo_url)
