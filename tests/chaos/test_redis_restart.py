"""Redis killed and started again empty mid-batch: the broker's messages, the chords'
counters and every snapshot are gone; Postgres is the record of truth, so every job still
ends correctly, and what clients see matches the database again."""

from __future__ import annotations

import time

import pytest

from tests.support.chaos.batch import submit_batch
from tests.support.chaos.checks import verify
from tests.support.chaos.findings import Findings, timed
from tests.support.chaos.probe import ApiProbe, recover_posting, status_table
from tests.support.chaos.rig import ChaosRig

pytestmark = [pytest.mark.chaos, pytest.mark.integration, pytest.mark.timeout(240)]

RECOVERY_BOUND_S = 60
DOWN_S = 1.0


def test_redis_restarted_empty_mid_batch_loses_nothing(chaos: ChaosRig) -> None:
    findings = Findings("Redis restarted empty mid-batch")
    with timed(findings, "stack start"):
        stack = chaos.start_stack()
    submitted = time.monotonic()
    jobs = submit_batch(chaos.http(), chaos.fake)
    with ApiProbe(stack.url, jobs[0].id, chaos.fake, post_phases={"outage", "recovered"}) as probe:
        chaos.fake.wait_busy(4)
        running = chaos.running_features(jobs)
        fault_at = chaos.fault_at = time.monotonic()
        probe.phase = "outage"
        chaos.redis.kill()
        time.sleep(DOWN_S)
        chaos.redis.start()
        fault_end = time.monotonic()
        findings.note(
            f"Redis down {fault_end - fault_at:.1f}s, {fault_at - submitted:.1f}s after "
            f"the first submission, {len(running)} features running"
        )
        findings.check("the API takes jobs again once Redis is back", recover_posting(probe))
        in_flight = running | chaos.fake.active_between(fault_at, fault_end)
        verify(
            chaos,
            findings,
            jobs,
            deadline=fault_end + RECOVERY_BOUND_S,
            bound=f"{RECOVERY_BOUND_S}s of Redis coming back",
            in_flight=in_flight,
        )
    findings.check("the API never answered 500", [str(r) for r in probe.results if r.status == 500])
    if probe.accepted:
        verify(
            chaos,
            findings,
            probe.accepted,
            deadline=time.monotonic() + RECOVERY_BOUND_S,
            bound="a minute (probe jobs submitted around the restart)",
            in_flight=set(),
            label="probe jobs",
        )
    findings.note(f"probe answers:\n{status_table(probe.results)}")
    findings.note(f"scenario took {time.monotonic() - submitted:.1f}s after the first submission")
    findings.assert_ok(chaos.log_excerpt)
