"""The supervisor of ``refract up``'s children, with real child processes: what exits is
restarted with growing backoff that resets once a child stayed up, SIGKILL included, and
stopping leaves no process behind (grandchildren and SIGTERM-deaf children included)."""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from launch.cli import yield_cpu
from launch.signals import interrupt_on_stop_signals
from launch.stack import EXIT_REFUSED, LocalStack
from launch.supervisor import Backoff, Supervisor
from refract.core.errors import StartupRefused
from refract.core.settings import Settings

PY = [sys.executable, "-I", "-S", "-c"]
SLEEPER = [*PY, "import time; time.sleep(120)"]
QUICK = Backoff(first_s=0.05, factor=2.0, max_s=0.2, reset_after_s=30.0)


@dataclass
class Events:
    """Records what the supervisor logs, as (event, fields)."""

    seen: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def info(self, event: str, **fields: Any) -> None:
        self.seen.append((event, fields))

    def warning(self, event: str, **fields: Any) -> None:
        self.seen.append((event, fields))

    def of(self, event: str, name: str | None = None) -> list[dict[str, Any]]:
        return [f for e, f in self.seen if e == event and name in (None, f.get("name"))]


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def poll_until(sup: Supervisor, condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    def polled() -> bool:
        sup.poll()
        return condition()

    wait_until(polled, timeout_s)


@pytest.fixture
def make_supervisor() -> Iterator[Callable[..., Supervisor]]:
    made: list[Supervisor] = []

    def make(commands: dict[str, list[str]], **kwargs: Any) -> Supervisor:
        kwargs.setdefault("backoff", QUICK)
        sup = Supervisor(commands, **kwargs)
        made.append(sup)
        return sup

    yield make
    for sup in made:
        sup.stop(grace_s=2)


def test_backoff_doubles_up_to_its_cap() -> None:
    backoff = Backoff()
    assert [backoff.delay(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


def test_a_child_that_exits_is_restarted_with_growing_delays(
    make_supervisor: Callable[..., Supervisor],
) -> None:
    events = Events()
    lines: list[str] = []
    sup = make_supervisor(
        {"flaky": [*PY, "raise SystemExit(3)"], "steady": SLEEPER}, log=events, echo=lines.append
    )
    sup.start()
    steady = sup.pids()["steady"]
    poll_until(sup, lambda: sup.restarts()["flaky"] >= 4)

    exits = events.of("child_exited", "flaky")
    assert [e["exit_code"] for e in exits[:4]] == [3, 3, 3, 3]
    assert [e["restart_in_s"] for e in exits[:4]] == [0.05, 0.1, 0.2, 0.2]
    restarted = events.of("child_restarted", "flaky")
    assert [r["restarts"] for r in restarted[:4]] == [1, 2, 3, 4]
    assert [r["delay_s"] for r in restarted[:4]] == [0.05, 0.1, 0.2, 0.2]
    # Each restart is a new process, announced with its pid.
    started = [e["pid"] for e in events.of("child_started", "flaky")]
    assert len(set(started)) == len(started) >= 5
    assert [r["pid"] for r in restarted[:4]] == started[1:5]
    # The other child is left alone.
    assert sup.pids()["steady"] == steady and sup.restarts()["steady"] == 0
    # The same events, printed as plain lines.
    assert f"refract: child_started name=steady pid={steady} restarts=0" in lines
    assert any(line.startswith("refract: child_exited name=flaky pid=") for line in lines)


def test_a_child_killed_with_sigkill_comes_back(
    make_supervisor: Callable[..., Supervisor],
) -> None:
    events = Events()
    sup = make_supervisor({"worker": SLEEPER}, log=events)
    sup.start()
    old = sup.pids()["worker"]
    os.kill(old, signal.SIGKILL)
    poll_until(sup, lambda: sup.pids().get("worker") not in (None, old))

    new = sup.pids()["worker"]
    assert alive(new) and not alive(old)
    (exited,) = events.of("child_exited", "worker")
    assert exited["pid"] == old and exited["exit_code"] == -signal.SIGKILL
    assert exited["signal"] == "SIGKILL"
    assert events.of("child_restarted", "worker") == [
        {"name": "worker", "pid": new, "restarts": 1, "delay_s": 0.05}
    ]
    assert events.of("child_started", "worker")[-1]["pid"] == new


def test_backoff_resets_once_a_child_stayed_up(
    make_supervisor: Callable[..., Supervisor],
) -> None:
    # Real processes, a hand-moved clock: uptime and due restarts are what the test says.
    clock, events = FakeClock(), Events()
    backoff = Backoff(first_s=1, factor=2, max_s=30, reset_after_s=60)
    sup = make_supervisor({"child": SLEEPER}, log=events, clock=clock, backoff=backoff)
    sup.start()

    def crash(after_s: float) -> float:
        """SIGKILL the child ``after_s`` (clock) after it started; its restart delay."""
        clock.now += after_s
        pid = sup.pids()["child"]
        exits = len(events.of("child_exited"))
        os.kill(pid, signal.SIGKILL)
        poll_until(sup, lambda: len(events.of("child_exited")) > exits)
        delay: float = events.of("child_exited")[-1]["restart_in_s"]
        sup.poll()
        assert sup.pids() == {}, "restarted before its delay"
        clock.now += delay
        sup.poll()
        assert sup.pids()["child"] != pid
        return delay

    assert [crash(after_s=1) for _ in range(4)] == [1, 2, 4, 8]
    assert crash(after_s=60) == 1  # it stayed up: a fresh start
    assert crash(after_s=59) == 2  # and failing fast again grows again


def test_what_a_child_leaves_in_its_group_dies_before_the_restart(
    make_supervisor: Callable[..., Supervisor], tmp_path: Path
) -> None:
    # Like gunicorn's workers when their master dies: they would keep the port.
    pidfile = tmp_path / "grandchild.pid"
    script = (
        "import subprocess, sys, time, pathlib;"
        f"p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']);"
        f"pathlib.Path({str(pidfile)!r}).write_text(str(p.pid));"
        "time.sleep(120)"
    )
    sup = make_supervisor({"api": [*PY, script]})
    sup.start()
    wait_until(lambda: pidfile.exists() and pidfile.read_text() != "")
    grandchild = int(pidfile.read_text())
    os.kill(sup.pids()["api"], signal.SIGKILL)
    poll_until(sup, lambda: "api" in sup.pids() and sup.restarts()["api"] == 1)
    wait_until(lambda: not alive(grandchild), timeout_s=5)


def test_stop_leaves_no_process_and_restarts_nothing(
    make_supervisor: Callable[..., Supervisor], tmp_path: Path
) -> None:
    pidfile = tmp_path / "grandchild.pid"
    spawner = (
        "import subprocess, sys, time, pathlib;"
        f"p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']);"
        f"pathlib.Path({str(pidfile)!r}).write_text(str(p.pid));"
        "time.sleep(120)"
    )
    deaf = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)"
    events = Events()
    sup = make_supervisor(
        {"spawner": [*PY, spawner], "deaf": [*PY, deaf], "flaky": [*PY, "raise SystemExit(1)"]},
        log=events,
        backoff=Backoff(first_s=5, reset_after_s=30),
    )
    sup.start()
    wait_until(lambda: pidfile.exists() and pidfile.read_text() != "")
    poll_until(sup, lambda: bool(events.of("child_exited", "flaky")))  # restart due in 5 s
    pids = [*sup.pids().values(), int(pidfile.read_text())]
    time.sleep(0.2)  # let "deaf" install its handler

    started = time.monotonic()
    sup.stop(grace_s=0.5)
    assert time.monotonic() - started < 5
    assert [pid for pid in pids if alive(pid)] == []
    assert sup.pids() == {}
    sup.poll()
    assert sup.pids() == {} and events.of("child_restarted") == []


def test_refract_up_supervises_until_sigterm_then_stops_everything(tmp_path: Path) -> None:
    # LocalStack's loop, without its real children: one crashing, one steady.
    events = Events()
    stack = LocalStack(Settings(redis_url="redis://127.0.0.1:1/0"), state_dir=tmp_path)
    stack.supervisor = Supervisor(
        {"worker": [*PY, "raise SystemExit(2)"], "beat": SLEEPER}, backoff=QUICK, log=events
    )
    stack.supervisor.start()
    beat = stack.pids()["beat"]
    original = signal.getsignal(signal.SIGTERM)

    def terminate_once_restarted() -> None:
        # Only once run_until_signalled has its handler in place (else SIGTERM ends pytest).
        wait_until(lambda: signal.getsignal(signal.SIGTERM) is not original)
        wait_until(lambda: len(events.of("child_restarted", "worker")) >= 2)
        os.kill(os.getpid(), signal.SIGTERM)

    killer = threading.Thread(target=terminate_once_restarted, daemon=True)
    killer.start()
    assert stack.run_until_signalled(poll_interval_s=0.02) == 0
    killer.join(timeout=10)

    assert signal.getsignal(signal.SIGTERM) is original
    assert stack.pids() == {}
    assert not alive(beat)
    assert [e["exit_code"] for e in events.of("child_exited", "worker")][:2] == [2, 2]


def test_a_child_that_refuses_is_not_restarted(
    make_supervisor: Callable[..., Supervisor],
) -> None:
    events = Events()
    sup = make_supervisor(
        {"worker": [*PY, "raise SystemExit(78)"], "beat": SLEEPER},
        log=events,
        final_exit_codes=frozenset({78}),
    )
    sup.start()
    poll_until(sup, lambda: bool(sup.refused()))
    time.sleep(0.3)  # longer than any backoff delay: nothing is due
    sup.poll()
    assert sup.refused() == {"worker": 78}
    assert sup.restarts()["worker"] == 0 and events.of("child_restarted", "worker") == []
    assert events.of("child_refused", "worker")[0]["exit_code"] == 78
    assert "beat" in sup.pids()  # the caller decides what happens to the rest


def test_refract_up_stops_everything_when_a_child_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = LocalStack(Settings(redis_url="redis://127.0.0.1:1/0"), state_dir=tmp_path)
    stack.supervisor = Supervisor(
        {"worker": [*PY, "raise SystemExit(78)"], "beat": SLEEPER},
        backoff=QUICK,
        log=Events(),
        final_exit_codes=frozenset({EXIT_REFUSED}),
    )
    stack.supervisor.start()
    beat = stack.pids()["beat"]
    assert stack.run_until_signalled(poll_interval_s=0.02) == EXIT_REFUSED
    assert stack.pids() == {} and not alive(beat)
    assert "refract: stopped the stack: the worker refused to start" in capsys.readouterr().err


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_stop_signals_interrupt_once(sig: signal.Signals) -> None:
    original = signal.getsignal(sig)
    seen: list[str] = []
    with interrupt_on_stop_signals():
        try:
            os.kill(os.getpid(), sig)
            time.sleep(1)  # the handler runs between bytecodes: well before this ends
        except KeyboardInterrupt as exc:
            seen.append(str(exc))
            os.kill(os.getpid(), sig)  # while cleaning up: ignored
            time.sleep(0.05)
    assert seen == [sig.name]
    assert signal.getsignal(sig) is original


def test_refract_up_refuses_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        stack = LocalStack(
            Settings(redis_url="redis://127.0.0.1:1/0"), port=port, state_dir=tmp_path
        )
        with pytest.raises(StartupRefused, match=rf"^127\.0\.0\.1:{port} is not free"):
            stack.start()
    assert stack.supervisor is None and stack.redis is None


def test_refract_up_runs_one_worker_or_several_with_their_own_hostnames(tmp_path: Path) -> None:
    base = ["python", "-m", "launch.cli"]
    one = LocalStack(Settings(), state_dir=tmp_path, concurrency=12)._workers(base)
    assert list(one) == ["worker"] and "--hostname" not in one["worker"]

    two = LocalStack(Settings(worker_processes=2), state_dir=tmp_path, concurrency=12)
    commands = two._workers(base)
    assert list(commands) == ["worker-1", "worker-2"]
    hostnames = {cmd[cmd.index("--hostname") + 1] for cmd in commands.values()}
    assert hostnames == {"refract1@%h", "refract2@%h"}
    assert all(cmd[cmd.index("--concurrency") + 1] == "12" for cmd in commands.values())


def test_a_worker_yields_the_cpu_by_its_niceness(monkeypatch: pytest.MonkeyPatch) -> None:
    added: list[int] = []

    def nice(increment: int) -> int:
        added.append(increment)
        return increment

    monkeypatch.setattr(os, "nice", nice)
    yield_cpu(Settings(worker_nice=7))
    yield_cpu(Settings(worker_nice=0))
    assert added == [7]
