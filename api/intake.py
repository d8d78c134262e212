"""Turning a ``POST /api/v1/jobs`` body into a validated :class:`Submission`.

Everything a client sent is checked here (content type, JSON syntax, fields, features,
the YouTube link, images by content) before anything is written anywhere: a request
that fails leaves the database and media storage untouched.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from flask import Request
from werkzeug.datastructures import FileStorage
from werkzeug.formparser import FormDataParser

from api.schemas import IdempotencyHeaders, PhotoCardForm, VideoJobRequest
from api.validation import parse
from refract.core.errors import BadRequest, FieldError, UnsupportedMediaType, ValidationFailed
from refract.core.settings import Settings
from refract.imaging.uploads import (
    THUMBNAIL_MAX_SIDE,
    CleanImage,
    decode_data_url,
    sanitize_image,
)
from refract.jobs.catalog import JobKind, resolve_features
from refract.jobs.store import NewJob, request_fingerprint
from refract.youtube.links import parse_video_url

JSON_TYPE = "application/json"
MULTIPART_TYPE = "multipart/form-data"
KINDS_HINT = "kind must be 'video' (sent as application/json) or 'photocard' (multipart/form-data)"


class ApiRequest(Request):
    """Flask's request, except that a malformed multipart body is an error, not ``{}``."""

    def make_form_data_parser(self) -> FormDataParser:
        """The form parser, told to raise on unparsable bodies (see :func:`read_form`)."""
        parser = super().make_form_data_parser()
        parser.silent = False
        return parser


@dataclass(frozen=True)
class Submission:
    """A checked job request: the job to create, and the images to store with it."""

    job: NewJob
    # role -> image; stored as artifacts of the job, in the job's transaction.
    images: dict[str, CleanImage] = field(default_factory=dict)


def idempotency_key(request: Request) -> str | None:
    """The ``Idempotency-Key`` header, checked (printable ASCII, at most 255 characters)."""
    value = request.headers.get("Idempotency-Key")
    if value is None:
        return None
    return parse(IdempotencyHeaders, {"Idempotency-Key": value}, what="header").idempotency_key


def read_submission(
    request: Request,
    settings: Settings,
    owner_key_id: uuid.UUID | None = None,
    *,
    fingerprint: bool = True,
) -> Submission:
    """Parse and check a job request by the key ``owner_key_id``; raises a
    ``ProblemError`` for anything wrong.

    ``fingerprint``: hash the request (``request_hash``), which only a request with an
    ``Idempotency-Key`` needs (a video's hash covers its whole inline source, thumbnail
    included: milliseconds of the request for nothing otherwise).
    """
    mimetype = request.mimetype
    if mimetype == JSON_TYPE or (
        mimetype.startswith("application/") and mimetype.endswith("+json")
    ):
        submission = _video_submission(_read_json(request), settings, fingerprint)
    elif mimetype == MULTIPART_TYPE:
        submission = _photocard_submission(request, settings)
    else:
        submission = None
    if submission is not None:
        return replace(submission, job=replace(submission.job, owner_key_id=owner_key_id))
    shown = mimetype or "none"
    raise UnsupportedMediaType(
        f"Content-Type {shown} is not accepted: send a video job as {JSON_TYPE} "
        f"or a photo card as {MULTIPART_TYPE}"
    )


def _read_json(request: Request) -> dict[str, Any]:
    """The body as a JSON object; 400 when it is not JSON at all."""
    raw = request.get_data(cache=False)  # 413 past MAX_CONTENT_LENGTH
    try:
        payload = json.loads(raw, parse_constant=_no_constants)
    except (ValueError, RecursionError) as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise ValidationFailed(
            "the body must be a JSON object",
            errors=[FieldError("body", "must be a JSON object")],
        )
    return payload


def _no_constants(name: str) -> Any:
    # NaN and Infinity are not JSON; Python's parser accepts them unless told otherwise.
    raise ValueError(f"{name} is not a valid JSON value")


def _check_kind(kind: Any, expected: JobKind) -> None:
    """Point a client that used the wrong body type for a kind to the right one."""
    if kind is None or kind == expected.value:
        return
    if kind == JobKind.PHOTOCARD.value:
        raise UnsupportedMediaType(
            "photocard jobs are sent as multipart/form-data with a photo file",
            errors=[FieldError("kind", "photocard jobs need a multipart/form-data body")],
        )
    if kind == JobKind.VIDEO.value:
        raise UnsupportedMediaType(
            "video jobs are sent as an application/json body",
            errors=[FieldError("kind", "video jobs need an application/json body")],
        )
    raise ValidationFailed(
        f"unknown kind {kind!r}", errors=[FieldError("kind", f"unknown kind; {KINDS_HINT}")]
    )


def _video_submission(
    payload: dict[str, Any], settings: Settings, fingerprint: bool = True
) -> Submission:
    _check_kind(payload.get("kind"), JobKind.VIDEO)
    request = parse(VideoJobRequest, payload)
    images: dict[str, CleanImage] = {}
    if request.url is not None:
        ref = parse_video_url(request.url)
        job_input: dict[str, Any] = {"url": ref.canonical_url, "video_id": ref.video_id}
    else:
        assert request.source is not None  # the model requires url or source
        if request.source.thumbnail is not None:
            images["thumbnail"] = decode_data_url(
                request.source.thumbnail,
                field="source.thumbnail",
                max_bytes=settings.max_upload_bytes,
                max_pixels=settings.max_image_pixels,
                max_side=THUMBNAIL_MAX_SIDE,
            )
        job_input = {"source": request.source.model_dump(mode="json", exclude={"thumbnail"})}
    job = NewJob(
        kind=JobKind.VIDEO,
        features=resolve_features(JobKind.VIDEO, request.features),
        language=request.language,
        input=job_input,
        request_hash=request_fingerprint(request.model_dump(mode="json")) if fingerprint else None,
    )
    return Submission(job, images)


def read_form(request: Request) -> tuple[dict[str, list[str]], dict[str, list[FileStorage]]]:
    """The multipart fields and files; 400 when the body cannot be parsed."""
    try:
        form, files = request.form, request.files
    except ValueError as exc:
        raise BadRequest(f"the multipart/form-data body is malformed: {exc}") from exc
    return form.to_dict(flat=False), files.to_dict(flat=False)


def _photocard_submission(request: Request, settings: Settings) -> Submission:
    form, files = read_form(request)
    _check_kind(_first(form, "kind"), JobKind.PHOTOCARD)
    fields: dict[str, Any] = {name: values[0] for name, values in form.items() if values}
    fields.pop("photo", None)
    if "features" in form:
        fields["features"] = [
            name.strip() for value in form["features"] for name in value.split(",") if name.strip()
        ]
    photo = _photo_bytes(form, files, settings.max_upload_bytes)
    if photo is not None:
        fields["photo"] = photo
    for name in files:
        if name != "photo":
            fields[name] = "(file)"  # refused as an unknown field by the model
    card = parse(PhotoCardForm, fields)
    image = sanitize_image(
        card.photo,
        field="photo",
        max_bytes=settings.max_upload_bytes,
        max_pixels=settings.max_image_pixels,
    )
    fingerprint = request_fingerprint(
        {
            "kind": card.kind,
            "prompt": card.prompt,
            "features": card.features,
            "language": card.language,
            "photo_sha256": hashlib.sha256(card.photo).hexdigest(),
        }
    )
    job = NewJob(
        kind=JobKind.PHOTOCARD,
        features=resolve_features(JobKind.PHOTOCARD, card.features),
        language=card.language,
        input={"prompt": card.prompt},
        request_hash=fingerprint,
    )
    return Submission(job, {"photo": image})


def _photo_bytes(
    form: dict[str, list[str]], files: dict[str, list[FileStorage]], max_bytes: int
) -> bytes | None:
    """The uploaded photo's bytes (at most ``max_bytes + 1`` read), or ``None`` if absent."""
    uploads = files.get("photo") or []
    if not uploads:
        if "photo" in form:
            raise ValidationFailed(
                "photo must be sent as a file",
                errors=[FieldError("photo", "must be a file part, not a text field")],
            )
        return None
    if len(uploads) > 1:
        raise ValidationFailed(
            "send exactly one photo", errors=[FieldError("photo", "send exactly one file")]
        )
    # One byte over the limit is enough for the size check to refuse it.
    data = uploads[0].stream.read(max_bytes + 1)
    if not data and not uploads[0].filename:
        return None  # a browser's empty file input: no photo was chosen
    return data


def _first(form: dict[str, list[str]], name: str) -> str | None:
    values = form.get(name)
    return values[0] if values else None
