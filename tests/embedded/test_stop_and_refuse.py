"""``refract up`` and ``refract demo`` leave nothing behind however they are stopped, and
stop with a one-line reason when a child refuses its configuration."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from launch.stack import EXIT_REFUSED
from tests.support.services import free_port
from tests.support.stack import RefractStack, clean_environ

pytestmark = pytest.mark.integration


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (children in sessions of their own included)."""
    found: set[int] = set()
    pending = [pid]
    while pending:
        parent = pending.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                if child not in found:
                    found.add(child)
                    pending.append(child)
    return found


def alive(pids: set[int]) -> set[int]:
    """Those of ``pids`` still running (a zombie is not running)."""
    running = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            running.add(pid)
    return running


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def wait_until_gone(pids: set[int], timeout_s: float = 30.0) -> set[int]:
    deadline = time.monotonic() + timeout_s
    while alive(pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    return alive(pids)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_up_stops_every_child_on_a_signal(tmp_path: Path, sig: signal.Signals) -> None:
    stack = RefractStack(clean_environ(), tmp_path).start()
    assert stack.process is not None
    children = descendants(stack.process.pid)
    # The embedded Redis, gunicorn's master and workers, the worker and beat.
    assert len(children) >= 5, children
    stack.process.send_signal(sig)
    assert stack.process.wait(timeout=60) == 0, stack.logs()[-3000:]
    assert wait_until_gone(children) == set(), stack.logs()[-3000:]
    assert port_is_free(stack.port)


def test_demo_stops_every_child_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        demo = subprocess.Popen(
            [sys.executable, "-m", "launch.cli", "demo", "--port", str(port)],
            cwd=tmp_path,
            env={**clean_environ(), "PYTHONUNBUFFERED": "1"},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while b"API ready at" not in log.read_bytes():
            assert demo.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        children = descendants(demo.pid)
        assert len(children) >= 5, children
        demo.send_signal(signal.SIGTERM)
        demo.wait(timeout=60)
        output = log.read_text()
        assert "stopping the stack" in output, output[-3000:]
        assert wait_until_gone(children) == set(), output[-3000:]
        assert port_is_free(port)
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()


def run_cli(
    args: list[str], cwd: Path, timeout_s: float = 120, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "launch.cli", *args],
        cwd=cwd,
        env={**clean_environ(), **env},
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


def test_a_worker_without_its_gemini_key_refuses_in_one_line(tmp_path: Path) -> None:
    for command in (["worker"], ["up", "--port", str(free_port())], ["demo"]):
        result = run_cli(
            command,
            tmp_path,
            timeout_s=60,
            GEMINI_API_KEY="",
            REFRACT_MODEL_BACKEND="gemini",
            REFRACT_REDIS_URL="redis://127.0.0.1:1/0",
        )
        assert result.returncode == EXIT_REFUSED, result.stderr
        assert "Traceback" not in result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith(f"refract {command[0]}: invalid configuration: ")
        assert "GEMINI_API_KEY" in lines[0] and "local backend" in lines[0]
    # Nothing was started: no state was even made.
    assert not (tmp_path / "var").exists()


def test_up_stops_the_stack_when_the_worker_refuses(tmp_path: Path) -> None:
    # The worker alone refuses (its metrics address); the API would start fine, but a
    # stack without a worker would take jobs that nobody runs: everything stops.
    result = run_cli(
        ["up", "--port", str(free_port()), "--state-dir", str(tmp_path / "state")],
        tmp_path,
        REFRACT_METRICS_BIND="nonsense",
    )
    assert result.returncode == EXIT_REFUSED, result.stdout + result.stderr
    assert "refract worker: metrics: REFRACT_METRICS_BIND must be host:port" in result.stderr
    assert "refract: stopped the stack: the worker refused to start" in result.stderr
    assert "child_restarted" not in result.stderr  # refused is final: no restart loop
    assert "Traceback" not in result.stderr


def test_demo_says_why_the_worker_refused(tmp_path: Path) -> None:
    result = run_cli(["demo", "--port", str(free_port())], tmp_path, REFRACT_METRICS_BIND="x")
    assert result.returncode == EXIT_REFUSED, result.stdout + result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last == (
        "refract demo: the worker refused to start: "
        "metrics: REFRACT_METRICS_BIND must be host:port, not 'x'"
    )
    assert "stopping the stack" in result.stdout
