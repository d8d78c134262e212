"""SIGKILL the worker mid-batch: the launcher starts another, and every job ends correctly
within a minute (heartbeats, not the fifteen-minute claim age or the visibility timeout)."""

from __future__ import annotations

import time

import pytest

from tests.support.chaos.batch import submit_batch
from tests.support.chaos.checks import verify
from tests.support.chaos.findings import Findings, timed
from tests.support.chaos.probe import ApiProbe, recover_posting, status_table
from tests.support.chaos.processes import kill_with_group, wait_for_new_worker, worker_pid
from tests.support.chaos.rig import ChaosRig

pytestmark = [pytest.mark.chaos, pytest.mark.integration, pytest.mark.timeout(240)]

RECOVERY_BOUND_S = 60


def test_worker_killed_mid_batch_loses_nothing(chaos: ChaosRig) -> None:
    findings = Findings("worker SIGKILL mid-batch")
    with timed(findings, "stack start"):
        stack = chaos.start_stack()
    submitted = time.monotonic()
    jobs = submit_batch(chaos.http(), chaos.fake)
    with ApiProbe(
        stack.url, jobs[0].id, chaos.fake, post_phases={"recovering", "recovered"}
    ) as probe:
        chaos.fake.wait_busy(4)
        running = chaos.running_features(jobs)
        pid, found_by = worker_pid(stack)
        chaos.remember_children()
        fault_at = chaos.fault_at = time.monotonic()
        probe.phase = "recovering"
        kill_with_group(pid)
        # What the dead worker held: claimed (running) in the database, or with a model
        # call started before the kill landed (the kill takes a moment after fault_at).
        killed_at = time.monotonic()
        running |= chaos.running_features(jobs)
        findings.note(
            f"killed worker {pid} (found by {found_by}) {fault_at - submitted:.1f}s after "
            f"the first submission, {len(running)} features running, "
            f"{chaos.fake.in_progress(fault_at)} model calls under way"
        )
        new_pid = wait_for_new_worker(stack, pid, timeout_s=30)
        chaos.remember_children()
        findings.note(f"new worker: {new_pid} ({time.monotonic() - fault_at:.1f}s after the kill)")
        findings.check(
            "the launcher restarted the killed worker",
            []
            if new_pid is not None
            else [
                "no new `child_started name=worker` (with a ` ready.` worker) within 30s; "
                f"refract up {'is still running' if chaos.stack_alive() else 'exited'}"
            ],
        )
        if not chaos.stack_alive():
            findings.assert_ok(chaos.log_excerpt)
        findings.check("the API takes jobs during and after the restart", recover_posting(probe))
        in_flight = running | chaos.fake.active_between(fault_at, killed_at)
        verify(
            chaos,
            findings,
            jobs,
            deadline=fault_at + RECOVERY_BOUND_S,
            bound=f"{RECOVERY_BOUND_S}s of the kill",
            in_flight=in_flight,
        )
    findings.check("the API never answered 500", [str(r) for r in probe.results if r.status == 500])
    if probe.accepted:
        verify(
            chaos,
            findings,
            probe.accepted,
            deadline=time.monotonic() + RECOVERY_BOUND_S,
            bound="a minute (jobs submitted during recovery)",
            in_flight=set(),
            label="probe jobs",
        )
    findings.note(f"probe answers:\n{status_table(probe.results)}")
    findings.note(f"scenario took {time.monotonic() - submitted:.1f}s after the first submission")
    findings.assert_ok(chaos.log_excerpt)
