"""What the OpenAPI document says about each operation, beside what its models say.

Each name here is a :func:`~api.openapi.spec.documented` mark that a view wears; the
view itself only parses, calls and returns. What models cannot express (headers, the
event stream, image bytes, the 304 answers) is written here, once.
"""

from __future__ import annotations

from typing import Any

from spectree import Response as Responses

from api.openapi.spec import documented
from api.schemas import (
    EventsQuery,
    FeatureEventData,
    Health,
    IdempotencyHeaders,
    JobEventData,
    JobList,
    JobListQuery,
    NotReadyProblem,
    PhotoCardForm,
    Problem,
    Readiness,
    VideoJobRequest,
)
from refract.jobs.resource import JobResource

JOB_ID = {"job_id": "The job's id (a UUID)."}


def _header(description: str, kind: str = "string") -> dict[str, Any]:
    return {"description": description, "schema": {"type": kind}}


ETAG = {"ETag": _header("The job's version tag.")}
RETRY_AFTER = {
    "Retry-After": _header(
        "Seconds to wait before polling again; absent once the job is final.", "integer"
    )
}
LOCATION = {"Location": _header("The job's URL.")}
IF_NONE_MATCH = {
    "name": "If-None-Match",
    "in": "header",
    "required": False,
    "description": "The ETag of the copy the client has; `304` if it is still current.",
    "schema": {"type": "string"},
}
IMAGE = {"schema": {"type": "string", "format": "binary"}}
# A dependency (database, Redis, broker) is down: every operation that needs one says so.
UNAVAILABLE = (
    Problem,
    "A dependency is down (`code` says which); try again after `Retry-After` seconds.",
)
UNAVAILABLE_HEADERS = {
    "503": {"headers": {"Retry-After": _header("Seconds to wait before trying again.", "integer")}}
}

EVENTS_DESCRIPTION = """\
A `text/event-stream` of the job's progress. Each event is

    id: <event id>
    event: feature | job
    data: <JSON: FeatureEventData or JobEventData>

Events are replayed from the job's beginning, or after `Last-Event-ID` (the header
EventSource sends when it reconnects, or the `last_event_id` query parameter), then
followed live, with `: keep-alive` comments while nothing happens. The stream ends after
the `job` event whose `final` is true; a long stream is also closed after a while, and
the client resumes with `Last-Event-ID`. A client reconnecting after it has seen the
final event gets `204 No Content`.
"""

# --- jobs --------------------------------------------------------------------------------

create_job = documented(
    operation_id="createJob",
    tags=["jobs"],
    json=VideoJobRequest,
    form=PhotoCardForm,
    headers=IdempotencyHeaders,
    resp=Responses(
        HTTP_202=(JobResource, "The job was created and its features enqueued."),
        HTTP_200=(JobResource, "The Idempotency-Key was used before: that same job."),
        HTTP_400=(Problem, "The body is not parsable (malformed JSON or multipart)."),
        HTTP_409=(Problem, "The Idempotency-Key was used with a different body."),
        HTTP_413=(Problem, "The body or the photo is too large."),
        HTTP_415=(
            Problem,
            "Not JSON nor multipart, a wrong body type for the kind, "
            "or a photo that is not a JPEG, PNG or WebP image.",
        ),
        HTTP_503=(
            Problem,
            "Not taken now, nothing created: too many features wait for a worker or intake "
            "is paused (`code: overloaded`), or a dependency is down (`code` says which). "
            "Try again after `Retry-After` seconds.",
        ),
    ),
    extra={
        "responses": {
            "202": {"headers": {**LOCATION, **ETAG}},
            "200": {"headers": {**LOCATION, **ETAG}},
            **UNAVAILABLE_HEADERS,
        },
        "requestBody": {
            "description": "A video job as JSON, or a photo card as multipart/form-data.",
            "content": {
                "multipart/form-data": {
                    "encoding": {"photo": {"contentType": "image/jpeg, image/png, image/webp"}}
                }
            },
        },
    },
)

get_job = documented(
    operation_id="getJob",
    tags=["jobs"],
    path_parameters=JOB_ID,
    resp=Responses(
        "HTTP_304",
        HTTP_200=(JobResource, "The job."),
        HTTP_404=(Problem, "No such job (or another key's)."),
        HTTP_503=UNAVAILABLE,
    ),
    extra={
        "parameters": [IF_NONE_MATCH],
        "responses": {
            "200": {"headers": {**ETAG, **RETRY_AFTER}},
            "304": {
                "description": "Not modified since the ETag given in If-None-Match.",
                "headers": {**ETAG, **RETRY_AFTER},
            },
            **UNAVAILABLE_HEADERS,
        },
    },
)

list_jobs = documented(
    operation_id="listJobs",
    tags=["jobs"],
    query=JobListQuery,
    resp=Responses(
        HTTP_200=(JobList, "A page of jobs, newest first (a client key's own only)."),
        HTTP_403=(Problem, "`key` given with a client key (only an admin may name a key)."),
        HTTP_503=UNAVAILABLE,
    ),
    extra={
        "responses": {
            "200": {"headers": {"Link": _header('The next page, as `<url>; rel="next"`.')}},
            **UNAVAILABLE_HEADERS,
        }
    },
)

stream_job_events = documented(
    operation_id="streamJobEvents",
    tags=["jobs"],
    query=EventsQuery,
    path_parameters=JOB_ID,
    resp=Responses(
        "HTTP_204",
        HTTP_404=(Problem, "No such job (or another key's)."),
        HTTP_503=UNAVAILABLE,
    ),
    extra={
        "description": EVENTS_DESCRIPTION,
        "parameters": [
            {
                "name": "Last-Event-ID",
                "in": "header",
                "required": False,
                "description": "Resume after this event id (sent by EventSource itself).",
                "schema": {"type": "string"},
            }
        ],
        "responses": {
            "200": {
                "description": (
                    "A Server-Sent Events stream of `feature` and `job` events. The stream is "
                    "text; each event's `data` line is a JSON object: "
                    "[FeatureEventData](#/components/schemas/FeatureEventData) for `feature`, "
                    "[JobEventData](#/components/schemas/JobEventData) for `job`."
                ),
                "content": {
                    "text/event-stream": {
                        "schema": {"type": "string"},
                        "x-event-data": {
                            "feature": {"$ref": "#/components/schemas/FeatureEventData"},
                            "job": {"$ref": "#/components/schemas/JobEventData"},
                        },
                        "example": (
                            'id: 1732701600000-0\nevent: feature\ndata: {"job_id": "…", '
                            '"feature": "summary", "status": "running", "progress": 0.0}\n\n'
                        ),
                    }
                },
            },
            "204": {
                "description": (
                    "The job is finished and its final event was already delivered: "
                    "EventSource stops reconnecting."
                )
            },
            **UNAVAILABLE_HEADERS,
        },
    },
    extra_models=(FeatureEventData, JobEventData),
)

delete_job = documented(
    operation_id="deleteJob",
    tags=["jobs"],
    path_parameters=JOB_ID,
    resp=Responses(
        "HTTP_204",
        HTTP_404=(Problem, "No such job (or another key's)."),
        HTTP_503=UNAVAILABLE,
    ),
    extra={
        "description": "Erase the job: its inputs, results and every image it stored. "
        "Afterwards the job answers 404 and its image URLs are dead.",
        "responses": {"204": {"description": "Erased."}, **UNAVAILABLE_HEADERS},
    },
)

# --- acting on a job ---------------------------------------------------------------------

ACCEPTED_HEADERS = {"202": {"headers": {**ETAG, **RETRY_AFTER}}}

cancel_job = documented(
    operation_id="cancelJob",
    tags=["jobs"],
    path_parameters=JOB_ID,
    resp=Responses(
        HTTP_202=(
            JobResource,
            "The job after the cancel: its unfinished features are `canceled` and the job "
            "is final (`canceled`, or `partial` if some features had succeeded). A job that "
            "was already final is answered unchanged.",
        ),
        HTTP_404=(Problem, "No such job (or another key's)."),
        HTTP_503=UNAVAILABLE,
    ),
    extra={
        "description": "Stop what has not finished. Features still `waiting` or `queued` "
        "become `canceled` at once, and so do `running` ones: their run stops at its next "
        "step and whatever it would have stored is discarded. Only the job's owner or an "
        "admin may cancel it; repeating a cancel is harmless.",
        "responses": {**ACCEPTED_HEADERS, **UNAVAILABLE_HEADERS},
    },
)

retry_feature = documented(
    operation_id="retryFeature",
    tags=["jobs"],
    path_parameters={**JOB_ID, "feature": "The feature's name, e.g. `stylize`."},
    resp=Responses(
        HTTP_202=(JobResource, "The job with the feature queued again."),
        HTTP_403=(
            Problem,
            "`code: retry_not_allowed`: the job's owner may retry only a `failed` feature.",
        ),
        HTTP_404=(Problem, "No such job (or another key's), or the job has no such feature."),
        HTTP_409=(
            Problem,
            "`code: feature_not_final`: the feature has not finished (it is waiting, queued "
            "or running); `code: job_purged`: retention erased the job's inputs.",
        ),
        HTTP_503=(
            Problem,
            "A dependency is down (`code` says which). With `code: broker_unavailable` the "
            "retry is recorded all the same and sent once the queue is back.",
        ),
    ),
    extra={
        "description": "Run a finished feature again: it goes back to `queued` with its "
        "attempts, result, error and usage cleared, the features that need it go back to "
        "`waiting` (retrying `stylize` makes a new `card`), and the job runs again. An "
        "admin may retry any finished feature (a succeeded one is run again); the job's "
        "owner only a `failed` one.",
        "responses": {**ACCEPTED_HEADERS, **UNAVAILABLE_HEADERS},
    },
)

# --- artifacts ---------------------------------------------------------------------------

SIGNATURE_PARAMETERS = [
    {
        "name": "expires",
        "in": "query",
        "required": True,
        "description": "When the URL stops working (Unix seconds); part of the signed URL "
        "a job resource gives out.",
        "schema": {"type": "integer"},
    },
    {
        "name": "sig",
        "in": "query",
        "required": True,
        "description": "The URL's signature; any change makes the URL answer 404.",
        "schema": {"type": "string"},
    },
]

get_artifact = documented(
    operation_id="getArtifact",
    tags=["artifacts"],
    path_parameters={"artifact_id": "The artifact's id (a UUID)."},
    resp=Responses(
        "HTTP_304",
        HTTP_404=(Problem, "No such artifact, or the URL is unsigned, altered or expired."),
        HTTP_410=(Problem, "The image was erased (retention)."),
        HTTP_503=UNAVAILABLE,
    ),
    extra={
        "description": "Served by the signed URL a job resource gives out (`image_url`, "
        "`photo_url`): no API key needed while it lasts (`REFRACT_ARTIFACT_URL_TTL_S`).",
        "parameters": [IF_NONE_MATCH, *SIGNATURE_PARAMETERS],
        "responses": {
            "200": {
                "description": "The image bytes.",
                "headers": {
                    "ETag": _header("The image's SHA-256."),
                    "Cache-Control": _header("`private, max-age=<seconds the URL has left>`."),
                },
                "content": {"image/png": IMAGE, "image/jpeg": IMAGE, "image/webp": IMAGE},
            },
            "304": {"description": "Not modified (If-None-Match matched the ETag)."},
            **UNAVAILABLE_HEADERS,
        },
    },
)

# --- health ------------------------------------------------------------------------------

healthz = documented(
    operation_id="healthz", tags=["health"], resp=Responses(HTTP_200=(Health, "Alive."))
)

readyz = documented(
    operation_id="readyz",
    tags=["health"],
    resp=Responses(
        HTTP_200=(Readiness, "Database, Redis and broker all answered."),
        HTTP_503=(NotReadyProblem, "A dependency is down."),
    ),
    extra={"responses": {"503": {"headers": {"Retry-After": {"schema": {"type": "integer"}}}}}},
)
