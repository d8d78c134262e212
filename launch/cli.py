"""The ``refract`` command: migrate, api, events, worker, beat, up, keys, intake, submit, demo.

Every sub-command reads the same settings (environment variables, see the README).
``refract up`` runs the API, a worker and beat as child processes in the foreground and
stops them all on Ctrl-C, SIGTERM or SIGHUP; ``refract submit`` is a client of a running
API; ``refract demo`` runs the samples through a stack it starts and stops itself.

A command that will not run with the configuration it was given (``StartupRefused``)
prints one line, ``refract <command>: <reason>``, and exits with
:data:`launch.stack.EXIT_REFUSED`, never with a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from launch.signals import interrupt_on_stop_signals
from launch.stack import EXIT_REFUSED, redact
from refract.core.errors import StartupRefused
from refract.core.logs import configure_logging
from refract.core.settings import Settings, load_settings
from refract.jobs.catalog import ALL_QUEUES

if TYPE_CHECKING:
    import httpx

    from launch.servers import ServerShape


def _settings() -> Settings:
    settings = load_settings()
    configure_logging(settings)
    return settings


def _require_broker(settings: Settings) -> None:
    """A worker or beat alone needs a broker; only ``refract up`` embeds one."""
    if settings.redis_url is None and settings.broker_url is None:
        raise StartupRefused(
            "REFRACT_REDIS_URL is not set: give the Redis URL, or run `refract up`, "
            "which starts an embedded Redis with the API, a worker and beat"
        )


def cmd_migrate(args: argparse.Namespace) -> int:
    """Upgrade the database schema to the newest revision."""
    from launch.migrate import upgrade

    settings = _settings()
    if upgrade(settings.database_url):
        print(f"refract: created the database {redact(settings.database_url)}")
    print(f"refract: schema up to date on {redact(settings.database_url)}")
    if settings.media_backend == "s3":
        from refract.imaging.s3store import S3Store

        # The media bucket is part of what a fresh deployment needs, like the schema.
        store = S3Store.from_settings(settings)
        store.ensure_bucket()
        store.close()
        print(f"refract: media bucket {settings.s3_bucket} ready")
    return 0


def cmd_api(args: argparse.Namespace) -> int:
    """Serve the HTTP API with gunicorn (threads; slow clients wait in the event loop)."""
    from launch.servers import API_WORKER, ServerShape

    return _serve_http(
        args, "api", ServerShape(API_WORKER, args.workers, args.threads, access_log=args.access_log)
    )


def cmd_events(args: argparse.Namespace) -> int:
    """Serve Server-Sent Events streams with gunicorn's gevent workers (see launch/servers.py)."""
    from gevent import monkey

    if not monkey.is_module_patched("socket"):
        # Start over in an interpreter patched before any import (launch/events_main.py).
        os.execv(sys.executable, [sys.executable, "-m", "launch.events_main", *sys.argv[1:]])
    from launch.servers import EVENTS_WORKER, ServerShape

    shape = ServerShape(
        EVENTS_WORKER, args.workers, connections=args.connections, access_log=args.access_log
    )
    return _serve_http(args, "events", shape)


def _serve_http(args: argparse.Namespace, command: str, shape: ServerShape) -> int:
    from api.auth import check_startup
    from launch.servers import serve

    settings = _settings()
    try:
        check_startup(settings, args.host)
    except StartupRefused as exc:
        print(f"refract {command}: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    serve(settings, f"{args.host}:{args.port}", shape)
    return 0


def yield_cpu(settings: Settings) -> None:
    """Add the worker's niceness to this process (``REFRACT_WORKER_NICE``; Unix only)."""
    if settings.worker_nice and hasattr(os, "nice"):
        os.nice(settings.worker_nice)


def cmd_worker(args: argparse.Namespace) -> int:
    """Run a Celery worker (threads pool) on the given queues."""
    import worker.signals  # noqa: F401  (per-process set-up after a fork)
    from worker.app import create_worker_app

    settings = _settings()
    _require_broker(settings)
    yield_cpu(settings)
    if settings.metrics_bind:
        # The worker's own metrics for a scraper that cannot reach the API's (compose
        # runs the API and each queue's workers in containers of their own).
        from refract.observability.exposition import serve

        try:
            serve(settings.metrics_bind)
        except (ValueError, OSError) as exc:
            print(f"refract worker: metrics: {exc}", file=sys.stderr)
            return EXIT_REFUSED
    app = create_worker_app(settings)
    argv = [
        "worker",
        "--queues",
        args.queues,
        "--pool",
        "threads",
        "--concurrency",
        str(args.concurrency or settings.worker_concurrency),
        "--loglevel",
        settings.log_level,
        "--hostname",
        args.hostname,
        "--without-mingle",
        "--without-gossip",
    ]
    # celery-types marks worker_main NoReturn, but it returns when the worker stops.
    run: Callable[[list[str]], object] = app.worker_main
    run(argv)
    return 0


def cmd_beat(args: argparse.Namespace) -> int:
    """Run Celery beat, which schedules the reconciler."""
    from worker.app import create_worker_app

    settings = _settings()
    _require_broker(settings)
    app = create_worker_app(settings)
    schedule = os.path.join(args.state_dir, "celerybeat-schedule")
    os.makedirs(args.state_dir, exist_ok=True)
    # As for the worker: start() returns when beat stops, whatever the stubs say.
    start: Callable[[list[str]], object] = app.start
    start(["beat", "--loglevel", settings.log_level, "--schedule", schedule])
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    """Migrate, then run the API, a worker and beat until Ctrl-C; stop them cleanly."""
    from launch.stack import LocalStack

    stack = LocalStack(
        _settings(),
        host=args.host,
        port=args.port,
        queues=args.queues,
        concurrency=args.concurrency,
        state_dir=Path(args.state_dir),
    )
    # Ctrl-C, SIGTERM or SIGHUP while the stack starts (embedded Redis, migrations) stops
    # what has started; once it runs, run_until_signalled takes the same signals over.
    with interrupt_on_stop_signals():
        try:
            stack.start()
        except StartupRefused as exc:
            stack.stop()
            print(f"refract up: {exc}", file=sys.stderr)
            return EXIT_REFUSED
        except KeyboardInterrupt:
            stack.stop()
            print("refract up: interrupted while starting; stopped", file=sys.stderr)
            return 130
        except BaseException:
            stack.stop()
            raise
        return stack.run_until_signalled()


def cmd_keys(args: argparse.Namespace) -> int:
    """Create, list or revoke API keys."""
    from launch.keys import run_keys

    settings = _settings()
    return run_keys(
        settings.database_url,
        args.action,
        name=getattr(args, "name", None),
        role=getattr(args, "role", "client"),
        rate=getattr(args, "rate", None),
        max_jobs_per_day=getattr(args, "max_jobs_per_day", None),
    )


def cmd_intake(args: argparse.Namespace) -> int:
    """Pause, resume or show intake of new jobs."""
    from launch.intake import run_intake

    settings = _settings()
    return run_intake(settings.effective_redis_url, args.action)


def cmd_submit(args: argparse.Namespace) -> int:
    """Submit a job to a running API, follow it live, print and save its results."""
    import httpx

    from launch.client import ClientError, unreachable
    from launch.targets import TargetError

    features = [f.strip() for f in args.features.split(",")] if args.features else None
    key = args.key or os.environ.get("REFRACT_API_KEY")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with httpx.Client(base_url=args.api, timeout=30, headers=headers) as http:
        try:
            return _submit_and_follow(http, args, features)
        except (TargetError, ClientError) as exc:
            print(f"refract submit: {exc}", file=sys.stderr)
            return 2
        except httpx.TransportError as exc:  # refused, timed out, no such host
            print(f"refract submit: {unreachable(args.api, exc)}", file=sys.stderr)
            return 2
        except httpx.HTTPError as exc:
            print(f"refract submit: {exc}", file=sys.stderr)
            return 2


def _submit_and_follow(
    http: httpx.Client, args: argparse.Namespace, features: list[str] | None
) -> int:
    from launch.client import follow, print_results, save_images, submit

    job = submit(http, args.target, prompt=args.prompt, features=features, language=args.language)
    print(
        f"job {job['id']} submitted; following {args.api}{job['links']['events']}",
        file=sys.stderr,
    )
    try:
        job = follow(http, job, out=sys.stderr if args.json else sys.stdout)
    except KeyboardInterrupt:
        print(f"\nstopped following; job {job['id']} goes on", file=sys.stderr)
        return 130
    saved = save_images(http, job, Path(args.out) / job["id"])
    if args.json:
        print(json.dumps(job, indent=2, ensure_ascii=False))
    else:
        print_results(job, saved)
    return 0 if job["status"] == "succeeded" else 1


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every sub-command."""
    parser = argparse.ArgumentParser(prog="refract", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("migrate", help="upgrade the database schema").set_defaults(func=cmd_migrate)

    def add_server_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--port", type=int, default=8000)

    api = sub.add_parser("api", help="serve the HTTP API (gunicorn)")
    add_server_args(api)
    api.add_argument("--workers", type=int, default=2)
    api.add_argument("--threads", type=int, default=16)
    api.add_argument("--access-log", action="store_true")
    api.set_defaults(func=cmd_api)

    events = sub.add_parser(
        "events", help="serve event streams (gevent), behind the proxy beside the API"
    )
    add_server_args(events)
    events.add_argument("--workers", type=int, default=1)
    events.add_argument("--connections", type=int, default=4000, help="open streams per worker")
    events.add_argument("--access-log", action="store_true")
    events.set_defaults(func=cmd_events)

    wrk = sub.add_parser("worker", help="run a Celery worker")
    wrk.add_argument("--queues", default=",".join(ALL_QUEUES))
    wrk.add_argument("--concurrency", type=int, default=None)
    wrk.add_argument("--hostname", default="refract@%h")
    wrk.set_defaults(func=cmd_worker)

    beat = sub.add_parser("beat", help="run Celery beat (the reconciler's schedule)")
    beat.add_argument("--state-dir", default="var")
    beat.set_defaults(func=cmd_beat)

    up = sub.add_parser("up", help="run API, worker and beat together until Ctrl-C")
    add_server_args(up)
    up.add_argument("--queues", default=",".join(ALL_QUEUES))
    up.add_argument("--concurrency", type=int, default=None)
    up.add_argument("--state-dir", default="var")
    up.set_defaults(func=cmd_up)

    sbm = sub.add_parser("submit", help="submit a YouTube URL, photo or source JSON and follow it")
    sbm.add_argument("target", help="a YouTube link, an image file, or a video source JSON file")
    sbm.add_argument("--api", default="http://127.0.0.1:8000", help="the API's base URL")
    sbm.add_argument("--prompt", help="the visitor's extra prompt (photo cards)")
    sbm.add_argument("--features", help="comma-separated subset of features")
    sbm.add_argument("--language", help="language of the written results, e.g. en or ko")
    sbm.add_argument("--json", action="store_true", help="print the final job as JSON")
    sbm.add_argument("--out", default="var/out", help="where to save image artifacts")
    sbm.add_argument("--key", help="the API key (default: $REFRACT_API_KEY)")
    sbm.set_defaults(func=cmd_submit)

    keys = sub.add_parser("keys", help="create, list or revoke API keys")
    keys_sub = keys.add_subparsers(dest="action", required=True)
    create = keys_sub.add_parser("create", help="make a key; its secret is the last line")
    create.add_argument("--name", required=True, help="who uses it, e.g. booth-1")
    create.add_argument("--role", choices=["client", "admin"], default="client")
    create.add_argument("--rate", help="submissions allowed, e.g. 120/min (default: settings)")
    create.add_argument("--max-jobs-per-day", type=int, help="a daily cap on new jobs")
    keys_sub.add_parser("list", help="every key (never a secret)")
    revoke = keys_sub.add_parser("revoke", help="revoke a key by name")
    revoke.add_argument("name")
    keys.set_defaults(func=cmd_keys)

    intake = sub.add_parser("intake", help="pause or resume intake of new jobs")
    intake.add_argument("action", choices=["pause", "resume", "status"])
    intake.set_defaults(func=cmd_intake)

    demo = sub.add_parser("demo", help="start the embedded stack, run the samples, stop")
    demo.add_argument("--port", type=int, default=None, help="API port (default: a free one)")
    demo.add_argument("--out", default="var/demo", help="where to save the images")
    demo.add_argument("--state-dir", default="var")
    demo.set_defaults(func=cmd_demo)
    return parser


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the samples through a freshly started embedded stack and print everything."""
    from launch.demo import run_demo

    settings = _settings()
    # SIGTERM and SIGHUP interrupt the demo as Ctrl-C does, so its clean-up stops every
    # child it started (run_demo stops the stack in a `finally`).
    with interrupt_on_stop_signals():
        try:
            return run_demo(
                settings, port=args.port, out_dir=Path(args.out), state_dir=Path(args.state_dir)
            )
        except KeyboardInterrupt:
            print("refract demo: interrupted", file=sys.stderr)
            return 130
        except (RuntimeError, TimeoutError) as exc:  # a child died while the stack started
            print(f"refract demo: the stack did not start: {exc}", file=sys.stderr)
            return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``refract`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except StartupRefused as exc:
        print(f"refract {args.command}: {exc}", file=sys.stderr)
        return EXIT_REFUSED


if __name__ == "__main__":
    sys.exit(main())
