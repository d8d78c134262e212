"""``refract demo``: the whole product in one command, on the embedded stack.

Starts Redis (embedded), the API, a worker and beat; submits the sample video, the
sample portrait and a group photo without a usable frontal face (in Korean) from
``examples/``; shows their progress live; prints every feature's result and where each
card was saved; then stops everything it started.
"""

from __future__ import annotations

import logging
import socket
import sys
from pathlib import Path

import httpx

from launch.client import follow, print_results, save_images, submit
from launch.stack import LocalStack
from refract.core.settings import Settings

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
DEMO_PROMPT = "a retro space-mission trading card, bold colours, stars in the background"
# The extra photo: a group seen from afar (no face big enough to crop), asked in Korean.
GROUP_PROMPT = "서울 야경, 선명한 색"
GROUP_LANGUAGE = "ko"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_demo(settings: Settings, *, port: int | None, out_dir: Path, state_dir: Path) -> int:
    """Run the demo; 0 when every feature of every job succeeded."""
    video, photo = EXAMPLES / "video.json", EXAMPLES / "astronaut.png"
    group = EXAMPLES / "group.png"
    for sample in (video, photo, group):
        if not sample.is_file():
            print(f"refract demo: sample {sample} is missing", file=sys.stderr)
            return 2
    # The schema upgrade's step-by-step log is noise here; the stack's own log has it all.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    stack = LocalStack(settings, port=port or _free_port(), state_dir=state_dir, quiet=True)
    print(f"refract demo: starting the stack (logs in {state_dir / 'stack.log'})", flush=True)
    ok = True
    try:
        stack.start()
        stack.wait_ready()
        print(
            f"refract demo: API ready at {stack.api_url} "
            f"(operators' dashboard: {stack.api_url}/admin/)\n",
            flush=True,
        )
        with httpx.Client(base_url=stack.api_url, timeout=30) as http:
            video_job = submit(http, str(video))
            photo_job = submit(http, str(photo), prompt=DEMO_PROMPT)
            group_job = submit(http, str(group), prompt=GROUP_PROMPT, language=GROUP_LANGUAGE)
            print(f"video job {video_job['id']} — {video.name}")
            video_job = follow(http, video_job, label="video  ")
            print(f"\nphoto card job {photo_job['id']} — {photo.name}")
            photo_job = follow(http, photo_job, label="photo  ")
            print(f"\nphoto card job {group_job['id']} — {group.name} (no frontal face, Korean)")
            group_job = follow(http, group_job, label="group  ")
            for job in (video_job, photo_job, group_job):
                saved = save_images(http, job, out_dir)
                print_results(job, saved)
                ok = ok and job["status"] == "succeeded"
                if "card" in saved:
                    print(f"\nthe finished card: {saved['card'].resolve()}")
    except KeyboardInterrupt:
        print("\nrefract demo: interrupted", file=sys.stderr)
        ok = False
    finally:
        print("\nrefract demo: stopping the stack", flush=True)
        stack.stop()
    print("refract demo: " + ("every feature succeeded" if ok else "some features did not succeed"))
    return 0 if ok else 1
