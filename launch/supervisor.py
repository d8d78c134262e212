"""Keeping a set of child processes running: restart what exits, with exponential backoff.

:class:`Supervisor` starts each named command as a child process in a process group of its
own, notices when one exits (:meth:`Supervisor.poll`), kills whatever the dead child left
in its group (gunicorn's workers, say, which would otherwise hold the port), and starts it
again after a delay from :class:`Backoff`: 1 s, doubling up to 30 s while the child keeps
failing, back to 1 s once it has stayed up a while. :meth:`Supervisor.stop` ends them all:
SIGTERM to every group, SIGKILL to what is left after the grace period, so that no process
outlives it.

Every start, exit and restart is a structured event (structlog) on ``launch.supervisor``:

- ``child_started`` name, pid, restarts: a child process now runs as ``pid`` (on the first
  start and after every restart), the one way to learn a child's current pid from a log;
- ``child_exited`` name, pid, exit_code (negative: killed by ``signal``), uptime_s,
  restart_in_s;
- ``child_restarted`` name, pid, restarts, delay_s;
- ``child_start_failed`` name, error, restart_in_s: a restart could not even spawn;
- ``child_refused`` name, pid, exit_code: the child exited with one of ``final_exit_codes``
  (it refused its configuration), so it is not restarted: the same configuration would
  be refused again. :meth:`Supervisor.refused` names such children; the caller decides.

The same events can also be printed as plain ``refract: <event> key=value ...`` lines
through ``echo`` (``refract up`` prints them into its stack log when quiet).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import structlog


class EventLog(Protocol):
    """Where the supervisor's events go: a structlog logger, or anything alike."""

    def info(self, event: str, **fields: Any) -> Any:
        """Log a routine event."""

    def warning(self, event: str, **fields: Any) -> Any:
        """Log an event that needs attention."""


@dataclass(frozen=True)
class Backoff:
    """How long to wait before restarting a child that exited.

    The n-th exit in a row waits ``first_s * factor ** (n - 1)``, at most ``max_s``; an exit
    after the child stayed up ``reset_after_s`` or longer counts as the first again.
    """

    first_s: float = 1.0
    factor: float = 2.0
    max_s: float = 30.0
    reset_after_s: float = 60.0

    def delay(self, failures: int) -> float:
        """The wait before the restart that follows the ``failures``-th exit in a row."""
        return float(min(self.max_s, self.first_s * self.factor ** max(0, failures - 1)))


@dataclass
class _Child:
    name: str
    command: list[str]
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    failures: int = 0  # exits in a row, each before the child stayed up reset_after_s
    restarts: int = 0
    restart_at: float | None = None  # when a child that exited is due to start again
    restart_delay_s: float = 0.0
    exit_code: int | None = None  # of the last exit


def _signal_group(pid: int, sig: int) -> None:
    """Send ``sig`` to the process group ``pid`` leads (or led: the group outlives it)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _signal_name(code: int) -> str | None:
    if code >= 0:
        return None
    try:
        return signal.Signals(-code).name
    except ValueError:
        return None


@dataclass
class Supervisor:
    """Named child processes, each in a session of its own, restarted when they exit.

    ``popen`` holds extra :class:`subprocess.Popen` arguments (``stdout``, ``stderr``) for
    every start; ``clock`` is :func:`time.monotonic` but for tests. Not thread-safe: one
    thread calls :meth:`start`, :meth:`poll` and :meth:`stop`.
    """

    commands: Mapping[str, Sequence[str]]
    env: Mapping[str, str] | None = None
    popen: Mapping[str, Any] = field(default_factory=dict)
    backoff: Backoff = field(default_factory=Backoff)
    log: EventLog = field(default_factory=lambda: structlog.get_logger(__name__))
    echo: Callable[[str], None] | None = None
    clock: Callable[[], float] = time.monotonic
    final_exit_codes: frozenset[int] = frozenset()
    _children: dict[str, _Child] = field(default_factory=dict, init=False)
    _stopped: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self._children = {
            name: _Child(name, list(command)) for name, command in self.commands.items()
        }

    def start(self) -> None:
        """Start every child; an error starting one (a missing program) is raised."""
        self._stopped = False
        for child in self._children.values():
            if child.process is None:
                self._spawn(child)

    def pids(self) -> dict[str, int]:
        """The pid of each child that is running now, by name."""
        return {
            name: child.process.pid
            for name, child in self._children.items()
            if child.process is not None and child.process.poll() is None
        }

    def exited(self) -> dict[str, int]:
        """The exit code of each child that is not running (exited, not yet restarted)."""
        codes: dict[str, int] = {}
        for name, child in self._children.items():
            code = child.process.poll() if child.process is not None else child.exit_code
            if code is not None:
                codes[name] = code
        return codes

    def refused(self) -> dict[str, int]:
        """The exit code of each child that exited with a final code and is left stopped."""
        return {
            name: child.exit_code
            for name, child in self._children.items()
            if child.process is None
            and child.restart_at is None
            and child.exit_code in self.final_exit_codes
        }

    def restarts(self) -> dict[str, int]:
        """How many times each child has been restarted."""
        return {name: child.restarts for name, child in self._children.items()}

    def poll(self) -> None:
        """Notice children that exited (and schedule their restart); restart those due."""
        if self._stopped:
            return
        for child in self._children.values():
            if child.process is not None:
                code = child.process.poll()
                if code is not None:
                    self._on_exit(child, code)
            if child.restart_at is not None and self.clock() >= child.restart_at:
                self._restart(child)

    def run(self, should_stop: Callable[[], bool], interval_s: float = 0.2) -> None:
        """Supervise until ``should_stop()`` says so (then the caller calls :meth:`stop`)."""
        while not should_stop():
            self.poll()
            time.sleep(interval_s)

    def stop(self, grace_s: float = 20.0) -> None:
        """Stop every child: SIGTERM to each group, SIGKILL once ``grace_s`` is over."""
        self._stopped = True
        running = [c.process for c in self._children.values() if c.process is not None]
        for process in running:
            if process.poll() is None:
                _signal_group(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for process in running:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(process.pid, signal.SIGKILL)
                process.wait()
            # Grandchildren (gunicorn workers) share the group; make sure none outlive it.
            _signal_group(process.pid, signal.SIGKILL)
        for child in self._children.values():
            if child.process is not None:
                child.exit_code = child.process.returncode
            child.process = None
            child.restart_at = None

    def _spawn(self, child: _Child) -> None:
        child.process = subprocess.Popen(
            child.command,
            env=dict(self.env) if self.env is not None else None,
            start_new_session=True,
            **self.popen,
        )
        child.started_at = self.clock()
        child.exit_code = None
        self._event(
            "info", "child_started", name=child.name, pid=child.process.pid, restarts=child.restarts
        )

    def _on_exit(self, child: _Child, code: int) -> None:
        assert child.process is not None
        pid = child.process.pid
        # Whatever the child left in its group dies with it, before a new one starts.
        _signal_group(pid, signal.SIGKILL)
        now = self.clock()
        uptime = now - child.started_at
        if code in self.final_exit_codes:
            child.process = None
            child.exit_code = code
            child.restart_at = None
            self._event("warning", "child_refused", name=child.name, pid=pid, exit_code=code)
            return
        if uptime >= self.backoff.reset_after_s:
            child.failures = 0
        child.failures += 1
        delay = self.backoff.delay(child.failures)
        child.process = None
        child.exit_code = code
        child.restart_at = now + delay
        child.restart_delay_s = delay
        fields: dict[str, Any] = {"name": child.name, "pid": pid, "exit_code": code}
        if (name := _signal_name(code)) is not None:
            fields["signal"] = name
        fields |= {"uptime_s": round(uptime, 3), "restart_in_s": round(delay, 3)}
        self._event("warning", "child_exited", **fields)

    def _restart(self, child: _Child) -> None:
        child.restart_at = None
        child.restarts += 1
        try:
            self._spawn(child)
        except OSError as exc:
            # Could not even start (out of processes, say): a failure like an exit.
            child.restarts -= 1
            child.failures += 1
            child.restart_delay_s = self.backoff.delay(child.failures)
            child.restart_at = self.clock() + child.restart_delay_s
            self._event(
                "warning",
                "child_start_failed",
                name=child.name,
                error=str(exc),
                restart_in_s=round(child.restart_delay_s, 3),
            )
            return
        assert child.process is not None
        self._event(
            "info",
            "child_restarted",
            name=child.name,
            pid=child.process.pid,
            restarts=child.restarts,
            delay_s=round(child.restart_delay_s, 3),
        )

    def _event(self, level: Literal["info", "warning"], event: str, **fields: Any) -> None:
        if level == "warning":
            self.log.warning(event, **fields)
        else:
            self.log.info(event, **fields)
        if self.echo is not None:
            self.echo(" ".join(["refract:", event, *(f"{k}={v}" for k, v in fields.items())]))
