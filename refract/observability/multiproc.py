"""The directory prometheus_client's multiprocess mode shares values through.

With ``PROMETHEUS_MULTIPROC_DIR`` set before a process records its first value, every
process writes its counters and histograms to files of its own there (named by pid, so
gunicorn's workers and prefork children never share one), and a scrape sums them all. The
launchers set it for their children; this module imports no metrics library, so a
launcher can call it before anything has chosen how values are kept.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> Path | None:
    """The directory metrics files are shared through, or ``None`` (this process only)."""
    value = os.environ.get(MULTIPROC_ENV, "").strip()
    return Path(value) if value else None


def prepare_directory(path: Path) -> Path:
    """Make ``path`` an empty metrics directory for a stack that is starting (values left
    by an earlier run would be summed into this one's); its absolute path. Only metrics
    files (``*.db``) are removed, in case the directory was pointed at something else."""
    path = path.resolve()
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink(missing_ok=True)
    return path


def ensure_multiprocess_dir() -> Path:
    """The metrics directory for this process and the children it starts: the configured
    one, else a private temporary one, set in the environment and removed when this
    process exits. Call it before any child process is started."""
    configured = multiprocess_dir()
    if configured is not None:
        configured.mkdir(parents=True, exist_ok=True)
        return configured
    path = Path(tempfile.mkdtemp(prefix="refract-metrics-"))
    os.environ[MULTIPROC_ENV] = str(path)
    owner = os.getpid()

    def remove() -> None:
        # Forked children inherit this hook; only the process that made the directory
        # removes it, when it exits itself.
        if os.getpid() == owner:
            shutil.rmtree(path, ignore_errors=True)

    atexit.register(remove)
    return path


def mark_process_dead(pid: int) -> None:
    """Tell the multiprocess files that ``pid`` is gone (a gunicorn worker that exited):
    its live gauges go; its counters stay, as counters must."""
    path = multiprocess_dir()
    if path is None or not path.is_dir():
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, str(path))  # type: ignore[no-untyped-call]
