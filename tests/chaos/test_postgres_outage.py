"""Postgres stopped for ten seconds mid-batch: the API answers 503 with Retry-After (never
500) for what needs the database, workers wait instead of dying or losing results, and
every job ends correctly once it is back."""

from __future__ import annotations

import time

import pytest

from tests.support.chaos.batch import submit_batch
from tests.support.chaos.checks import verify
from tests.support.chaos.findings import Findings, timed
from tests.support.chaos.probe import ApiProbe, ProbeResult, recover_posting, status_table
from tests.support.chaos.rig import ChaosRig

pytestmark = [pytest.mark.chaos, pytest.mark.integration, pytest.mark.timeout(240)]

RECOVERY_BOUND_S = 60
OUTAGE_S = 10.0
# What cannot be answered without the database: a new job, the job list, a job Redis has
# no snapshot of, and readiness.
NEEDS_DATABASE = ("post", "list", "get_unknown", "readyz")


def test_postgres_stopped_for_ten_seconds_loses_nothing(chaos: ChaosRig) -> None:
    findings = Findings("Postgres stopped for 10s mid-batch")
    with timed(findings, "stack start"):
        stack = chaos.start_stack()
    submitted = time.monotonic()
    jobs = submit_batch(chaos.http(), chaos.fake)
    with ApiProbe(stack.url, jobs[0].id, chaos.fake, post_phases={"outage", "recovered"}) as probe:
        chaos.fake.wait_busy(4)
        running = chaos.running_features(jobs)
        fault_at = chaos.fault_at = time.monotonic()
        probe.phase = "stopping"
        chaos.cluster.stop("immediate")
        probe.phase = "outage"
        time.sleep(OUTAGE_S)
        probe.phase = "starting"
        chaos.cluster.start()
        fault_end = time.monotonic()
        findings.note(
            f"Postgres down {fault_end - fault_at:.1f}s, {fault_at - submitted:.1f}s after "
            f"the first submission, {len(running)} features running"
        )
        findings.check("the API takes jobs again once Postgres is back", recover_posting(probe))
        in_flight = running | chaos.fake.active_between(fault_at, fault_end)
        verify(
            chaos,
            findings,
            jobs,
            deadline=fault_end + RECOVERY_BOUND_S,
            bound=f"{RECOVERY_BOUND_S}s of Postgres coming back",
            in_flight=in_flight,
        )
    outage = probe.in_phase("outage")
    findings.check("the API never answered 500", [str(r) for r in probe.results if r.status == 500])
    findings.check(
        "every request during the outage was answered (no hang, no dropped connection)",
        [f"{r.target}: {r.error} after {r.elapsed_s}s" for r in outage if r.error],
    )
    findings.check(
        "what needs the database answered 503 with Retry-After during the outage",
        _unavailable_problems(outage),
    )
    findings.check(
        "a job with a snapshot was still shown during the outage (200 from Redis, or 503)",
        [
            f"get_job: {r.status} {r.detail[:120]}"
            for r in outage
            if r.target == "get_job" and r.status not in (200, 503)
        ],
    )
    if probe.accepted:
        verify(
            chaos,
            findings,
            probe.accepted,
            deadline=time.monotonic() + RECOVERY_BOUND_S,
            bound="a minute (probe jobs submitted around the outage)",
            in_flight=set(),
            label="probe jobs",
        )
    outage_posts = [r for r in outage if r.target == "post" and r.status == 202]
    findings.check(
        "no job was accepted while the database was down",
        [f"POST answered 202 during the outage: {r.detail[:120]}" for r in outage_posts],
    )
    findings.note(f"probe answers:\n{status_table(probe.results)}")
    findings.note(f"scenario took {time.monotonic() - submitted:.1f}s after the first submission")
    findings.assert_ok(chaos.log_excerpt)


def _unavailable_problems(outage: list[ProbeResult]) -> list[str]:
    problems = []
    for target in NEEDS_DATABASE:
        answered = [r for r in outage if r.target == target and r.error is None]
        if not answered:
            problems.append(f"{target}: no answer during the outage to judge")
            continue
        for r in answered:
            if r.status != 503 or not (r.retry_after or "").isdigit():
                problems.append(
                    f"{target}: {r.status} Retry-After={r.retry_after!r} {r.detail[:160]}"
                )
    return problems
