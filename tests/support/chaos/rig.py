"""One scenario's private world (:class:`ChaosRig`): its Postgres cluster, Redis, fake
Gemini and ``refract up`` stack, started and stopped together.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from refract.core.models import Job
from refract.jobs.catalog import FINAL_JOB_STATUSES
from refract.jobs.resource import job_resource
from tests.support.chaos.batch import BatchJob
from tests.support.chaos.gemini import (
    PHOTO_FEATURES,
    VIDEO_FEATURES,
    ChaosGemini,
    FeatureKey,
)
from tests.support.chaos.postgres import PostgresCluster
from tests.support.chaos.processes import (
    alive,
    cmdline,
    descendants,
    kill_with_group,
    started_children,
    wait_gone,
)
from tests.support.chaos.redis_server import RestartableRedis
from tests.support.stack import RefractStack


@dataclass
class ChaosRig:
    """One scenario's private world: Postgres cluster, Redis, fake Gemini, the stack."""

    workdir: Path
    latency_s: float = 1.2
    cluster: PostgresCluster = field(init=False)
    redis: RestartableRedis = field(init=False)
    fake: ChaosGemini = field(init=False)
    database_url: str = field(init=False, default="")
    stack: RefractStack | None = field(init=False, default=None)
    engine: Engine | None = field(init=False, default=None)
    client: httpx.Client | None = field(init=False, default=None)
    env_values: dict[str, str] = field(init=False, default_factory=dict)
    fault_at: float | None = field(init=False, default=None)  # set by the scenario
    _seen_pids: set[int] = field(init=False, default_factory=set)

    def __post_init__(self) -> None:
        self.cluster = PostgresCluster(self.workdir / "postgres")
        self.redis = RestartableRedis(self.workdir / "redis")
        self.fake = ChaosGemini()

    @property
    def media_dir(self) -> Path:
        """Where the stack keeps images."""
        return self.workdir / "stack" / "media"

    # --- lifetime ------------------------------------------------------------------

    def start_services(self) -> Self:
        """Create and start the cluster, Redis and the fake (not the stack)."""
        self.cluster.create().start()
        self.database_url = self.cluster.create_database("refract_chaos")
        self.engine = create_engine(self.database_url, pool_pre_ping=True)
        self.redis.start()
        self.fake.latency_s = self.latency_s
        self.fake.start()
        return self

    def env(self, **overrides: str) -> dict[str, str]:
        """The stack's environment: short timeouts and intervals so recovery is fast."""
        values = {
            "REFRACT_DATABASE_URL": self.database_url,
            "REFRACT_REDIS_URL": self.redis.url(0),
            "REFRACT_MODEL_BACKEND": "gemini",
            "GEMINI_API_KEY": "test-key",
            "REFRACT_GEMINI_BASE_URL": self.fake.url,
            "REFRACT_MEDIA_DIR": str(self.media_dir),
            "REFRACT_MODEL_TIMEOUT_S": "4",
            "REFRACT_IMAGE_MODEL_TIMEOUT_S": "5",
            "REFRACT_MODEL_MAX_ATTEMPTS": "3",
            "REFRACT_MODEL_BACKOFF_BASE_S": "0.2",
            "REFRACT_MODEL_BACKOFF_MAX_S": "1",
            "REFRACT_MODEL_MAX_RETRY_DELAY_S": "5",
            "REFRACT_GEMINI_RPM": "0",
            "REFRACT_WORKER_CONCURRENCY": "8",
            "REFRACT_RECONCILE_INTERVAL_S": "1",
            "REFRACT_REQUEUE_AFTER_S": "3",
            "REFRACT_HEARTBEAT_INTERVAL_S": "1",
            "REFRACT_HEARTBEAT_TIMEOUT_S": "5",
            "REFRACT_MAX_ATTEMPTS": "3",
            "REFRACT_STORE_RETRY_S": "30",
            "REFRACT_FEATURE_DEADLINES_S": json.dumps(
                {f: 60 for f in (*VIDEO_FEATURES, *PHOTO_FEATURES)}
            ),
            "REFRACT_YOUTUBE_TRANSCRIPTS": "false",
            "REFRACT_LOG_LEVEL": "INFO",
        }
        values.update(overrides)
        return values

    def start_stack(self, **overrides: str) -> RefractStack:
        """Start ``refract up`` with :meth:`env` and ``overrides``."""
        self.env_values = self.env(**overrides)
        self.fake.text_timeout_s = float(self.env_values["REFRACT_MODEL_TIMEOUT_S"])
        self.fake.image_timeout_s = float(self.env_values["REFRACT_IMAGE_MODEL_TIMEOUT_S"])
        self.stack = RefractStack(self.env_values, self.workdir / "stack")
        self.stack.start(timeout_s=90)
        self.client = self.stack.client()
        self.remember_children()
        return self.stack

    def remember_children(self) -> None:
        """Note the stack's processes now, to make sure none outlives the test."""
        if self.stack is not None and self.stack.process is not None:
            self._seen_pids |= {pid for pid, _ in descendants(self.stack.process.pid)}
            for name in ("api", "worker", "beat"):
                self._seen_pids |= set(started_children(self.stack.logs(), name))

    def close(self) -> None:
        """Stop everything, in reverse order; each step runs even if another failed."""
        steps: list[Callable[[], None]] = [
            lambda: self.client.close() if self.client is not None else None,
            self._stop_stack,
            self.fake.stop,
            self.redis.stop,
            lambda: self.engine.dispose() if self.engine is not None else None,
            self.cluster.destroy,
        ]
        errors = []
        for step in steps:
            try:
                step()
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
        if errors:
            raise RuntimeError(f"chaos rig teardown failed: {errors}")

    def _stop_stack(self) -> None:
        if self.stack is None:
            return
        self.remember_children()
        self.stack.stop()
        # A child that outlived `refract up` (an unsupervised orphan): kill it and its group.
        for pid in sorted(self._seen_pids):
            if alive(pid) and "launch.cli" in cmdline(pid):
                kill_with_group(pid)
                wait_gone(pid, 5)

    def __enter__(self) -> Self:
        try:
            return self.start_services()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- looking ---------------------------------------------------------------------

    def http(self) -> httpx.Client:
        """The test's HTTP client of the stack."""
        assert self.client is not None, "start the stack first"
        return self.client

    def db(self) -> Engine:
        """A direct connection to the stack's database."""
        assert self.engine is not None, "start the services first"
        return self.engine

    def running_features(self, jobs: list[BatchJob]) -> set[FeatureKey]:
        """The features of ``jobs`` that are ``running`` in the database now."""
        by_id = {job.id: job for job in jobs}
        with self.db().connect() as conn:
            rows = conn.execute(
                text("SELECT job_id, feature FROM feature_runs WHERE status = 'running'")
            ).all()
        return {by_id[str(job_id)].key(feature) for job_id, feature in rows if str(job_id) in by_id}

    def database_resource(self, job_id: str) -> dict[str, Any] | None:
        """The job resource built from the database, as the API's fallback builds it."""
        with Session(self.db()) as session:
            job = session.get(Job, uuid.UUID(job_id))
            return job_resource(job) if job is not None else None

    def log_excerpt(self, limit: int = 60) -> str:
        """The stack log's interesting lines: errors, tracebacks, children, recovery."""
        if self.stack is None:
            return ""
        pattern = re.compile(
            r"error|exception|traceback|exited|child_|unhandled|critical|lost|stale|"
            r"requeue|heartbeat|restart|warning",
            re.IGNORECASE,
        )
        lines = [line for line in self.stack.logs().splitlines() if pattern.search(line)]
        shown = lines[-limit:]
        return (
            f"stack log ({self.stack.log_path}), {len(lines)} notable lines, last {len(shown)}:\n"
            + ("\n".join(f"  | {line[:300]}" for line in shown))
        )

    def stack_alive(self) -> bool:
        """Whether ``refract up`` is still running."""
        return (
            self.stack is not None
            and self.stack.process is not None
            and (self.stack.process.poll() is None)
        )

    # --- waiting ---------------------------------------------------------------------

    def wait_final(
        self, jobs: list[BatchJob], deadline: float
    ) -> tuple[dict[str, dict[str, Any]], list[str]]:
        """Poll every job until final or ``deadline`` (monotonic); the final resources
        by job id, and a problem line for each job not final in time."""
        finals: dict[str, dict[str, Any]] = {}
        pending = {job.id: job for job in jobs}
        last: dict[str, str] = {}
        while pending and time.monotonic() < deadline and self.stack_alive():
            for job_id in list(pending):
                try:
                    response = self.http().get(f"/api/v1/jobs/{job_id}", timeout=5)
                except httpx.HTTPError as exc:
                    last[job_id] = f"GET failed: {type(exc).__name__}"
                    continue
                if response.status_code != 200:
                    last[job_id] = f"GET answered {response.status_code}"
                    continue
                body = response.json()
                if body["status"] in FINAL_JOB_STATUSES:
                    finals[job_id] = body
                    del pending[job_id]
                else:
                    last[job_id] = json.dumps({f: v["status"] for f, v in body["features"].items()})
            if pending:
                time.sleep(0.5)
        problems = []
        for job_id, job in pending.items():
            readable = self.database_up()
            stored = self.database_resource(job_id) if readable else None
            in_db: Any = "unreadable"
            if stored is not None:
                in_db = {f: (v["status"], v["attempts"]) for f, v in stored["features"].items()}
            elif readable:
                in_db = "no such job"
            problems.append(
                f"{job.marker} {job_id} not final: API said {last.get(job_id)}; "
                f"database (status, attempts) {in_db}"
            )
        if pending and not self.stack_alive():
            problems.append("refract up exited while jobs were pending")
        return finals, problems

    def database_up(self) -> bool:
        """Whether the stack's database answers now."""
        try:
            with self.db().connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False
