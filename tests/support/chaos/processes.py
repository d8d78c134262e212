"""The processes of a running ``refract up`` stack: finding, killing and watching them."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
from pathlib import Path

from tests.support.stack import RefractStack

_PID = re.compile(r"""\bpid["']?\s*[=:]\s*["']?(\d+)""")


def started_children(log: str, name: str) -> list[int]:
    """The pids of ``child_started name=<name> pid=N`` lines (text or JSON logs), in order."""
    name_re = re.compile(rf"""\bname["']?\s*[=:]\s*["']?{re.escape(name)}\b""")
    pids = []
    for line in log.splitlines():
        if "child_started" in line and name_re.search(line) and (found := _PID.search(line)):
            pids.append(int(found.group(1)))
    return pids


def child_processes(parent: int) -> list[tuple[int, str]]:
    """``(pid, command line)`` of the live children of ``parent``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 1 and int(fields[1]) == parent and fields[0] != "Z":
            found.append((int(entry.name), cmdline.strip()))
    return found


def descendants(root: int) -> list[tuple[int, str]]:
    """Every live descendant of ``root``."""
    found: list[tuple[int, str]] = []
    todo = [root]
    while todo:
        children = child_processes(todo.pop())
        found += children
        todo += [pid for pid, _ in children]
    return found


def worker_pid(stack: RefractStack) -> tuple[int, str]:
    """The running worker's pid, and how it was found: from the supervisor's
    ``child_started name=worker`` log line, else among ``refract up``'s children."""
    logged = [pid for pid in started_children(stack.logs(), "worker") if alive(pid)]
    if logged:
        return logged[-1], "child_started log line"
    assert stack.process is not None
    for pid, cmdline in child_processes(stack.process.pid):
        if "launch.cli" in cmdline and " worker" in cmdline:
            return pid, "process table (no child_started line in the log)"
    raise AssertionError(f"no worker process found:\n{stack.logs()[-3000:]}")


def kill_with_group(pid: int) -> None:
    """SIGKILL ``pid``, and its process group when it leads one of its own."""
    try:
        group = os.getpgid(pid)
    except ProcessLookupError:
        return
    with contextlib.suppress(ProcessLookupError):
        if group == pid and group != os.getpgrp():
            os.killpg(group, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)


def wait_for_new_worker(stack: RefractStack, old_pid: int, timeout_s: float) -> int | None:
    """The pid of a worker the supervisor started after ``old_pid`` died, once it is
    consuming (a new `` ready.`` line); None if none came within ``timeout_s``."""
    ready_before = stack.logs().count(" ready.")
    deadline = time.monotonic() + timeout_s
    new_pid: int | None = None
    while time.monotonic() < deadline:
        if stack.process is not None and stack.process.poll() is not None:
            return None
        if new_pid is None:
            fresh = [p for p in started_children(stack.logs(), "worker") if p != old_pid]
            new_pid = fresh[-1] if fresh and alive(fresh[-1]) else None
        if new_pid is not None and stack.logs().count(" ready.") > ready_before:
            return new_pid
        time.sleep(0.2)
    return new_pid


def cmdline(pid: int) -> str:
    """The command line of process ``pid`` (empty once it is gone)."""
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


def alive(pid: int) -> bool:
    """Whether process ``pid`` is running (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (killed, not yet reaped by its parent) is gone for our purposes.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def wait_gone(pid: int, timeout_s: float) -> bool:
    """Wait up to ``timeout_s`` for process ``pid`` to be gone; whether it is."""
    deadline = time.monotonic() + timeout_s
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
