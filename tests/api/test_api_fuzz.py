"""schemathesis over the OpenAPI document: generated requests, valid and invalid, against
the real app (keys required, an admin key), with every response checked against the
document. Zero server errors, zero schema violations, and the document and the
validators agree: what the schema calls valid is accepted, what it calls invalid is
refused.

Bounded: a fixed number of examples per operation, derandomised so that a failure is
reproducible; about half a minute in all.
"""

from __future__ import annotations

import base64
import io
import json
import os
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import hypothesis
import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given
from hypothesis import strategies as st
from PIL import Image
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.result import Ok
from schemathesis.generation.feedback import NO_FEEDBACK

from tests.support.keys import bearer, make_key

# REFRACT_FUZZ_EXAMPLES=500 REFRACT_FUZZ_RANDOM=1 explores further than CI's bounded run.
EXAMPLES_PER_OPERATION = int(os.environ.get("REFRACT_FUZZ_EXAMPLES", "40"))
DERANDOMIZE = os.environ.get("REFRACT_FUZZ_RANDOM", "") != "1"
# The document's own string formats (api/schemas.py), generated as the server makes them.
VIDEO_URL = (
    r"\A(https://(www\.|m\.)?youtube\.com/(watch\?v=|shorts/|embed/|live/)|https://youtu\.be/)"
    r"[A-Za-z0-9_-]{11}\Z"
)


def job_cursor(created: datetime, job_id: uuid.UUID) -> str:
    """A cursor as the server makes one: opaque to clients, readable by the server."""
    raw = json.dumps([created.isoformat(), str(job_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def image_bytes(fmt: str, size: int, colour: tuple[int, int, int]) -> bytes:
    """A small real image of ``fmt`` (JPEG, PNG, WEBP), as a visitor's photo would be."""
    out = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(out, format=fmt)
    return out.getvalue()


def register_formats() -> None:
    # A photo part says its type (the operation's multipart encoding); its bytes are a
    # real image of that type, as the server checks by content.
    for fmt, media_type in (("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp")):
        schemathesis.openapi.media_type(
            media_type,
            st.builds(
                image_bytes,
                st.just(fmt),
                st.integers(min_value=64, max_value=160),
                st.tuples(*[st.integers(0, 255)] * 3),
            ),
        )
    schemathesis.openapi.format(
        "youtube-video-url",
        st.from_regex(VIDEO_URL).filter(lambda url: "videoseries" not in url),
    )
    schemathesis.openapi.format(
        "image-data-url",
        st.builds(
            lambda data: "data:image/png;base64," + base64.b64encode(data).decode(),
            st.builds(image_bytes, st.just("PNG"), st.just(64), st.just((40, 90, 200))),
        ),
    )
    schemathesis.openapi.format(
        "opaque-cursor",
        st.builds(job_cursor, st.datetimes(timezones=st.just(UTC)), st.uuids()),
    )


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    positive_data_acceptance,
    negative_data_rejection,
]


@pytest.fixture
def fuzzed_app(make_app: Callable[..., Flask]) -> Flask:
    """Keys required; limits high enough that generated traffic is not rate limited."""
    return make_app(auth="required", submit_rate="100000/min", read_rate="100000/min")


def test_the_server_keeps_to_its_document(fuzzed_app: Flask) -> None:
    register_formats()
    headers = bearer(make_key("fuzzer", role="admin"))
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", fuzzed_app)
    failures: list[str] = []
    tried = 0
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"the document does not load: {result}"
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            tried += 1
            # No feedback: schemathesis would otherwise mix the document's constants
            # (status codes, examples) into strings whose format it was told how to make.
            # The key is fixed, so a negative case never loses it by accident.
            strategy = operation.as_strategy(mode, feedback=NO_FEEDBACK, headers=headers)

            @given(case=strategy)
            @hypothesis.settings(
                max_examples=EXAMPLES_PER_OPERATION,
                deadline=None,
                derandomize=DERANDOMIZE,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def keeps_to_it(case: Any) -> None:
                case.call_and_validate(checks=CHECKS)

            try:
                keeps_to_it()
            except hypothesis.errors.Unsatisfiable:
                # Nothing to make invalid (no parameters, no body): only positive cases.
                assert mode == GenerationMode.NEGATIVE, operation.label
            except (Exception, BaseExceptionGroup) as exc:  # every operation is tried
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    assert tried >= 16
    assert not failures, "\n\n".join(failures)
