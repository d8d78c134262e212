"""The baseline the API's read rows are measured against: a bare Flask endpoint.

It answers ``GET /api/v1/jobs/<id>`` with a fixed body the size of a real job resource,
an ``ETag``, and ``304`` when ``If-None-Match`` matches: the least any Flask app under the
same gunicorn shape can do for that request. ``bench/api.py`` serves it with gunicorn.
"""

from __future__ import annotations

import json

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

app = Flask(__name__)


@app.get("/api/v1/jobs/<job_id>")
def job(job_id: str) -> Response:
    """The fixed resource, or 304 when the client has it."""
    if request.headers.get("If-None-Match") == ETAG:
        return Response(status=304, headers={"ETag": ETAG})
    return Response(BODY, mimetype="application/json", headers={"ETag": ETAG})
