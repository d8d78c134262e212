"""The baseline the API's read rows are measured against: a bare Flask endpoint.

It answers ``GET /api/v1/jobs/<id>`` with a fixed body the size of a real job resource,
an ``ETag``, and ``304`` when ``If-None-Match`` matches; and ``POST /api/v1/jobs`` by
parsing the JSON body and answering ``202`` with a job-sized body and a ``Location``:
the least any Flask app under the same gunicorn shape can do for those requests.
``bench/api.py`` serves it with gunicorn.
"""

from __future__ import annotations

import json
import uuid

from flask import Flask, Response, request

# About the size of a video job's resource while it runs.
BODY = json.dumps(
    {
        "id": "00000000-0000-0000-0000-000000000000",
        "kind": "video",
        "status": "running",
        "progress": 0.5,
        "features": {
            name: {"status": "running", "progress": 0.5, "attempts": 1, "result": None}
            for name in ("summary", "comments", "thumbnail")
        },
        "padding": "x" * 900,
    }
).encode()
ETAG = '"bare-1"'
RESOURCE = json.loads(BODY)

app = Flask(__name__)


@app.get("/api/v1/jobs/<job_id>")
def job(job_id: str) -> Response:
    """The fixed resource, or 304 when the client has it."""
    if request.headers.get("If-None-Match") == ETAG:
        return Response(status=304, headers={"ETag": ETAG})
    return Response(BODY, mimetype="application/json", headers={"ETag": ETAG})


@app.post("/api/v1/jobs")
def create() -> Response:
    """Parse the body, answer 202 with a job-sized resource and where to read it."""
    body = request.get_json(force=True)
    if not isinstance(body, dict):
        return Response(status=422)
    job_id = str(uuid.uuid4())
    created = json.dumps({**RESOURCE, "id": job_id, "status": "queued"})
    return Response(
        created,
        status=202,
        mimetype="application/json",
        headers={"ETag": ETAG, "Location": f"/api/v1/jobs/{job_id}"},
    )
