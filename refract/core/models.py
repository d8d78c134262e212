"""Database models: API keys, jobs, their feature runs, and artifacts (stored images).

Postgres is the record of truth; Redis only mirrors it. The metadata carries a naming
convention so that Alembic's generated constraint names are stable across databases.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# JSONB on Postgres (indexable, compact), plain JSON elsewhere (SQLite).
JSONType = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A point in time, always timezone-aware in UTC on the Python side.

    Postgres keeps ``timestamptz``; SQLite has no time zones, so the value is stored as
    naive UTC and given its zone back when read. Code comparing or formatting times never
    meets a naive datetime.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """UTC on the way in (naive values are refused: their zone is unknown)."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: give times in UTC (utcnow())")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Aware UTC on the way out, whatever the database kept."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base with Refract's naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ApiKey(Base):
    """A client's or an operator's API key. Only a hash of the secret is kept.

    The secret is 32 random bytes, so a single SHA-256 suffices (a slow password hash
    protects guessable secrets; these are not). ``prefix`` is the start of the secret,
    shown by ``refract keys list`` to tell keys apart.
    """

    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16), default="client")  # client or admin
    prefix: Mapped[str] = mapped_column(String(16))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # "<count>/<sec|min|hour>" for submissions; None: the settings' default.
    rate: Mapped[str | None] = mapped_column(String(32), default=None)
    max_jobs_per_day: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class Job(Base):
    """One visitor request: a video to analyse or a photo to make a card from."""

    __tablename__ = "jobs"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    language: Mapped[str] = mapped_column(String(16), default="en")
    # What the job works on: {"url", "video_id"} or {"source": {...}} for videos,
    # {"prompt"} for photo cards (the photo itself is an Artifact with role "photo").
    input: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # The key that created the job (None with REFRACT_AUTH=off): only it, or an admin,
    # may see the job.
    owner_key_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("api_keys.id", ondelete="SET NULL"), default=None, index=True
    )
    # Scoped to the owner: "<owner key id or '-'>:<the client's Idempotency-Key>".
    idempotency_key: Mapped[str | None] = mapped_column(String(320), default=None)
    request_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    # Bumped under the job's row lock on every change; orders Redis snapshots and ETags.
    version: Mapped[int] = mapped_column(Integer, default=0)
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    enqueue_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # When retention erased its images and inline inputs (statuses and usage stay).
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)

    features: Mapped[list[FeatureRun]] = relationship(
        back_populates="job",
        cascade="all, delete-orphan",
        order_by="FeatureRun.position",
        lazy="selectin",
    )

    __table_args__ = (
        UniqueConstraint("idempotency_key"),
        Index("ix_jobs_created_at_id", "created_at", "id"),
        Index("ix_jobs_status_created_at", "status", "created_at"),
    )


class FeatureRun(Base):
    """One feature of one job: its status, result, error, usage and timings."""

    __tablename__ = "feature_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    feature: Mapped[str] = mapped_column(String(32))
    position: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # The Celery task id of the run that claimed the feature: a redelivery of that same
    # message may take over, a second copy of the task (re-enqueued) may not.
    task_id: Mapped[str | None] = mapped_column(String(64), default=None)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONType, default=None)
    error_code: Mapped[str | None] = mapped_column(String(64), default=None)
    error_message: Mapped[str | None] = mapped_column(Text, default=None)
    # Names the log lines of an unexpected failure; the public error carries only this.
    error_ref: Mapped[str | None] = mapped_column(String(32), default=None)
    backend: Mapped[str | None] = mapped_column(String(32), default=None)
    model: Mapped[str | None] = mapped_column(String(128), default=None)
    prompt_version: Mapped[str | None] = mapped_column(String(64), default=None)
    input_tokens: Mapped[int | None] = mapped_column(Integer, default=None)
    output_tokens: Mapped[int | None] = mapped_column(Integer, default=None)
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # Refreshed every few seconds by the run that claimed the feature while it works; a
    # running feature whose heartbeat stopped has lost its worker.
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    job: Mapped[Job] = relationship(back_populates="features")

    __table_args__ = (
        UniqueConstraint("job_id", "feature"),
        Index("ix_feature_runs_status_queued_at", "status", "queued_at"),
        # Admission control counts what finished in the last minute (the drain rate).
        Index("ix_feature_runs_finished_at", "finished_at"),
    )


class Artifact(Base):
    """An image kept in media storage: an upload, a thumbnail, a stylized face, a card."""

    __tablename__ = "artifacts"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    job_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("jobs.id", ondelete="CASCADE"), default=None, index=True
    )
    role: Mapped[str] = mapped_column(String(32))  # photo, thumbnail, stylize, card
    content_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    width: Mapped[int | None] = mapped_column(Integer, default=None)
    height: Mapped[int | None] = mapped_column(Integer, default=None)
    storage_key: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Set when retention erased the file: the artifact then answers 410 Gone.
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
