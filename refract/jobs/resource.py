"""The job resource of API.md: its pydantic models, and the one function that builds it.

The models are the single source of the resource's shape: :func:`job_resource` builds it
through them, and the OpenAPI document describes it from them. The same function builds
the Redis snapshot (in the worker, right after a change) and the Postgres fallback (in
the API), so both always agree.

Stored rows name images by artifact id only. The resource built here (and published to
Redis) names each image by its bare path (:func:`artifact_url`), which opens nothing: the
API signs every such path as it answers (:meth:`refract.access.signing.Signer.sign_urls`),
so the capability URLs a client gets are never stored or published anywhere. The models
describe what the client gets, signed URLs included.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from refract.core.models import FeatureRun, Job
from refract.jobs.catalog import JobKind, JobStatus

API_PREFIX = "/api/v1"


class FeatureError(BaseModel):
    """Why a feature ended without a result; `code` is stable."""

    code: str = Field(examples=["safety_block"])
    message: str
    reference: str | None = Field(
        default=None,
        description="For an unexpected failure: quote it to the operators, it names the logs.",
    )


class Usage(BaseModel):
    """Model tokens a feature used."""

    input_tokens: int | None = None
    output_tokens: int | None = None


class FeatureResource(BaseModel):
    """One feature of a job."""

    status: str = Field(
        description="waiting, queued, running, succeeded, failed, blocked, skipped or canceled"
    )
    progress: float = Field(ge=0, le=1)
    attempts: int = Field(ge=0)
    result: dict[str, Any] | None = Field(
        default=None,
        description=(
            "The feature's result; an object naming an `artifact_id` (the images of "
            "`stylize`, `card` and `thumbnail`) also carries its `image_url`: a signed URL "
            "that works without a key until it expires "
            "(`/api/v1/artifacts/<id>?expires=<unix>&sig=<hmac>`)."
        ),
    )
    error: FeatureError | None = None
    backend: str | None = None
    model: str | None = None
    prompt_version: str | None = None
    usage: Usage | None = None
    queued_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


class VideoInputSummary(BaseModel):
    """What a video job works on."""

    url: str | None = None
    video_id: str | None = None
    title: str | None = None
    inline_source: bool = False


class PhotoCardInputSummary(BaseModel):
    """What a photo card job works on."""

    prompt: str = Field(default="", description="Empty once retention has erased it.")
    photo_url: str | None = Field(
        default=None,
        description=(
            "The uploaded photo: a signed URL that works without a key until it expires "
            "(`/api/v1/artifacts/<id>?expires=<unix>&sig=<hmac>`); once retention has "
            "erased the photo it answers 410."
        ),
    )


class JobLinks(BaseModel):
    """Related URLs."""

    model_config = ConfigDict(populate_by_name=True)

    self_: str = Field(alias="self")
    events: str


class JobResource(BaseModel):
    """A job and each of its features (see API.md)."""

    id: str = Field(description="The job id (a UUID).")
    kind: JobKind
    status: JobStatus
    progress: float = Field(ge=0, le=1)
    language: str
    input: VideoInputSummary | PhotoCardInputSummary
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None
    purged_at: datetime | None = Field(
        default=None,
        description=(
            "When retention erased the job's images and inline inputs (its image URLs "
            "then answer 410); null until then."
        ),
    )
    features: dict[str, FeatureResource]
    links: JobLinks
    version: int = Field(description="Increases on every change; the ETag is derived from it.")


def job_url(job_id: str) -> str:
    """Where a job is read."""
    return f"{API_PREFIX}/jobs/{job_id}"


def artifact_url(artifact_id: str) -> str:
    """Where a client fetches the image of artifact ``artifact_id``."""
    return f"{API_PREFIX}/artifacts/{artifact_id}"


def with_image_urls(value: Any) -> Any:
    """``value`` with an ``image_url`` beside every ``artifact_id`` it holds (a copy)."""
    if isinstance(value, dict):
        shown = {key: with_image_urls(item) for key, item in value.items()}
        if isinstance(value.get("artifact_id"), str):
            shown["image_url"] = artifact_url(value["artifact_id"])
        return shown
    if isinstance(value, list):
        return [with_image_urls(item) for item in value]
    return value


def feature_resource(run: FeatureRun) -> FeatureResource:
    """One entry of the job resource's ``features``."""
    error = None
    if run.error_code:
        error = FeatureError(
            code=run.error_code, message=run.error_message or "", reference=run.error_ref
        )
    usage = None
    if run.input_tokens is not None or run.output_tokens is not None:
        usage = Usage(input_tokens=run.input_tokens, output_tokens=run.output_tokens)
    return FeatureResource(
        status=run.status,
        progress=round(run.progress, 3),
        attempts=run.attempts,
        result=with_image_urls(run.result) if run.result is not None else None,
        error=error,
        backend=run.backend,
        model=run.model,
        prompt_version=run.prompt_version,
        usage=usage,
        queued_at=run.queued_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
    )


def job_input_summary(job: Job) -> VideoInputSummary | PhotoCardInputSummary:
    """What the job was asked to work on, without bulky inline material."""
    data = job.input or {}
    if job.kind == JobKind.VIDEO:
        source = data.get("source") or {}
        return VideoInputSummary(
            url=data.get("url"),
            video_id=data.get("video_id"),
            title=source.get("title") if source else data.get("title"),
            inline_source=bool(source),
        )
    photo = data.get("photo_artifact_id")
    return PhotoCardInputSummary(
        prompt=data.get("prompt", ""), photo_url=artifact_url(photo) if photo else None
    )


def job_resource(job: Job) -> dict[str, Any]:
    """The full job resource (see API.md, "The job resource"), as JSON-ready data."""
    job_id = str(job.id)
    resource = JobResource(
        id=job_id,
        kind=JobKind(job.kind),
        status=JobStatus(job.status),
        progress=round(job.progress, 3),
        language=job.language,
        input=job_input_summary(job),
        created_at=job.created_at,
        updated_at=job.updated_at,
        finished_at=job.finished_at,
        purged_at=job.purged_at,
        features={run.feature: feature_resource(run) for run in job.features},
        links=JobLinks.model_validate(
            {"self": job_url(job_id), "events": f"{job_url(job_id)}/events"}
        ),
        version=job.version,
    )
    return resource.model_dump(mode="json", by_alias=True)


def etag_for(job_id: str, version: int, url_epoch: int | None = None) -> str:
    """The strong ETag of a job at ``version``; snapshot and database give the same.

    ``url_epoch`` names the period its signed image URLs were made in: once they are
    re-signed the answer differs, so the ETag does too (a client revalidating gets
    fresh URLs before its old ones expire).
    """
    suffix = f"-{url_epoch}" if url_epoch is not None else ""
    return f'"{job_id[:8]}-{version}{suffix}"'
