"""A command-line client of the HTTP API: submit a job, follow its progress, show results.

Used by ``refract submit`` and ``refract demo``. It only speaks HTTP to the API (never
the database or Redis), so it works against any running Refract.
"""

from __future__ import annotations

import json
import mimetypes
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import httpx

from launch.targets import read_target
from refract.core.errors import RefractError
from refract.jobs.catalog import FINAL_JOB_STATUSES


class ClientError(RefractError):
    """The API refused a request; the message is the problem's detail."""


def unreachable(api_url: str, exc: httpx.TransportError) -> str:
    """One line for an API that could not be reached: the URL tried and how to start one."""
    reason = " ".join(str(exc).split()) or type(exc).__name__
    return (
        f"cannot reach the API at {api_url} ({reason}); start it with `refract up` "
        "(or `make demo` for a one-off demo), or give --api the URL of a running one"
    )


def _problem(response: httpx.Response) -> ClientError:
    try:
        body = response.json()
        detail = body.get("detail") or body.get("title")
        fields = "; ".join(f"{e['field']}: {e['message']}" for e in body.get("errors", []))
        return ClientError(f"{response.status_code} {detail}" + (f" ({fields})" if fields else ""))
    except ValueError:
        return ClientError(f"{response.status_code} {response.text[:200]}")


def submit(
    http: httpx.Client,
    target: str,
    *,
    prompt: str | None = None,
    features: list[str] | None = None,
    language: str | None = None,
) -> dict[str, Any]:
    """Create a job from a YouTube URL, a ``source`` JSON file or a photo file.

    A target that cannot be read raises :class:`launch.targets.TargetError` saying why,
    before anything is sent."""
    what = read_target(target)
    if what.photo is not None:
        path = what.photo
        form: dict[str, str] = {"kind": "photocard"}
        if prompt:
            form["prompt"] = prompt
        if features:
            form["features"] = ",".join(features)
        if language:
            form["language"] = language
        with path.open("rb") as handle:
            response = http.post(
                "/api/v1/jobs", data=form, files={"photo": (path.name, handle, what.mime)}
            )
    else:
        body: dict[str, Any] = {"kind": "video"}
        if what.source is not None:
            body["source"] = what.source
        else:
            body["url"] = what.url
        if features:
            body["features"] = features
        if language:
            body["language"] = language
        response = http.post("/api/v1/jobs", json=body)
    if response.status_code not in (200, 202):
        raise _problem(response)
    return dict(response.json())


Event = tuple[str | None, str, dict[str, Any]]


def parse_event_stream(lines: Iterable[str]) -> Iterator[Event]:
    """(id, event, data) for each event in Server-Sent Events ``lines``; comments skipped."""
    event_id: str | None = None
    name = "message"
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield event_id, name, json.loads("\n".join(data))
            event_id, name, data = None, "message", []
        elif not line.startswith(":"):
            key, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if key == "id":
                event_id = value
            elif key == "event":
                name = value
            elif key == "data":
                data.append(value)


def events(http: httpx.Client, job_id: str, last_event_id: str | None = None) -> Iterator[Event]:
    """The job's Server-Sent Events as (id, event, data) until the server ends the stream."""
    headers = {"Accept": "text/event-stream"}
    if last_event_id:
        headers["Last-Event-ID"] = last_event_id
    with http.stream(
        "GET",
        f"/api/v1/jobs/{job_id}/events",
        headers=headers,
        timeout=httpx.Timeout(10.0, read=60.0),
    ) as response:
        if response.status_code == 204:  # the job had already ended for this client
            return
        if response.status_code != 200:
            response.read()
            raise _problem(response)
        yield from parse_event_stream(response.iter_lines())


@dataclass
class ProgressView:
    """A per-feature progress display: redrawn in place on a terminal, lines otherwise."""

    features: list[str]
    out: TextIO = sys.stdout
    label: str = ""
    state: dict[str, tuple[str, float, str]] = field(default_factory=dict)
    _drawn: int = 0

    def __post_init__(self) -> None:
        self.live = self.out.isatty()
        for name in self.features:
            self.state[name] = ("queued", 0.0, "")
        if self.live:
            self._draw()

    def update(self, feature: str, status: str, progress: float, step: str = "") -> None:
        """Record a feature event and show it."""
        previous = self.state.get(feature)
        self.state[feature] = (status, progress, step)
        if self.live:
            self._draw()
        elif previous is None or previous[0] != status or step:
            self.out.write(f"{self.label}{feature:<10} {status:<10} {progress:>4.0%}  {step}\n")
            self.out.flush()

    def _draw(self) -> None:
        if self._drawn:
            self.out.write(f"\x1b[{self._drawn}F")
        for name in self.features:
            status, progress, step = self.state[name]
            filled = int(progress * 20)
            bar = "#" * filled + "-" * (20 - filled)
            self.out.write(
                f"\x1b[2K{self.label}{name:<10} [{bar}] {progress:>4.0%} {status:<10} {step}\n"
            )
        self._drawn = len(self.features)
        self.out.flush()


def follow(
    http: httpx.Client, job: dict[str, Any], *, out: TextIO = sys.stdout, label: str = ""
) -> dict[str, Any]:
    """Show the job's progress live until it finishes; return the final job resource."""
    view = ProgressView(list(job["features"]), out=out, label=label)
    for name, feature in job["features"].items():
        view.update(name, feature["status"], feature["progress"])
    last_id: str | None = None
    for _attempt in range(100):  # the server closes long streams; resume where we were
        finished = False
        for event_id, name, data in events(http, job["id"], last_id):
            last_id = event_id or last_id
            if name == "feature":
                view.update(
                    data["feature"],
                    data["status"],
                    data["progress"],
                    data.get("step", "")
                    if data["status"] == "running"
                    else (data.get("error") or {}).get("code", ""),
                )
            elif name == "job" and data.get("final"):
                finished = True
        current = http.get(f"/api/v1/jobs/{job['id']}").json()
        if finished or current["status"] in FINAL_JOB_STATUSES:
            return dict(current)
    return dict(http.get(f"/api/v1/jobs/{job['id']}").json())


def save_images(http: httpx.Client, job: dict[str, Any], directory: Path) -> dict[str, Path]:
    """Download every image a feature produced into ``directory``; returns their paths."""
    saved: dict[str, Path] = {}
    for name, feature in job["features"].items():
        url = (feature.get("result") or {}).get("image_url")
        if not url:
            continue
        response = http.get(url)
        response.raise_for_status()
        suffix = mimetypes.guess_extension(response.headers.get("content-type", "")) or ".bin"
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{job['id'][:8]}-{name}{suffix}"
        path.write_bytes(response.content)
        saved[name] = path
    return saved


def render_value(value: Any, indent: int = 4) -> list[str]:
    """A readable, indented rendering of a JSON value."""
    pad = " " * indent
    if isinstance(value, dict):
        lines = []
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                lines.append(f"{pad}{key}:")
                lines += render_value(item, indent + 2)
            else:
                lines.append(f"{pad}{key}: {_scalar(item)}")
        return lines
    if isinstance(value, list):
        lines = []
        for item in value:
            if isinstance(item, dict):
                inner = render_value(item, indent + 2)
                lines.append(f"{pad}- " + inner[0].strip())
                lines += inner[1:]
            else:
                lines.append(f"{pad}- {_scalar(item)}")
        return lines
    return [f"{pad}{_scalar(value)}"]


def _scalar(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return "-" if value in (None, [], {}) else str(value)


def print_results(job: dict[str, Any], saved: dict[str, Path], *, out: TextIO = sys.stdout) -> None:
    """Print each feature's outcome and result readably."""
    out.write(f"\njob {job['id']} ({job['kind']}): {job['status']}\n")
    for name, feature in job["features"].items():
        usage = feature.get("usage") or {}
        who = "/".join(x for x in (feature.get("backend"), feature.get("model")) if x) or "-"
        tokens = (
            f", {usage.get('input_tokens')} in / {usage.get('output_tokens')} out tokens"
            if usage
            else ""
        )
        out.write(f"\n  {name}: {feature['status']} ({who}{tokens})\n")
        if feature.get("error"):
            out.write(f"    error {feature['error']['code']}: {feature['error']['message']}\n")
        result = dict(feature.get("result") or {})
        if name in saved:
            result["saved_to"] = str(saved[name])
        for line in render_value(result):
            out.write(line + "\n")
    out.flush()
