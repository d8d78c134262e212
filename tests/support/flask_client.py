"""Flask's test client, closing the request bodies it builds."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient
from werkzeug.test import TestResponse


class ClosingFlaskClient(FlaskClient):
    """``FlaskClient`` that closes each request's body once the response is back.

    werkzeug spools a multipart body over 500 KiB (a photo upload) to a temporary file and
    never closes it: left to the garbage collector, it is a ResourceWarning, which the test
    suite treats as an error.
    """

    def open(self, *args: Any, **kwargs: Any) -> TestResponse:
        """Send the request as ``FlaskClient.open`` does, then close its body."""
        response = super().open(*args, **kwargs)
        response.request.input_stream.close()
        return response
