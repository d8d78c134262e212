"""What a chaos scenario checks once its jobs are final: each job's outcome, its rows and
files, attempts, snapshots and model calls, all against the database.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from refract.access.signing import URL_FIELDS
from refract.jobs.catalog import JobKind
from refract.jobs.progress import ProgressBus
from tests.support.chaos.batch import BatchJob
from tests.support.chaos.findings import Findings
from tests.support.chaos.gemini import IMAGE_FEATURES, FeatureKey
from tests.support.chaos.rig import ChaosRig


@dataclass(frozen=True)
class Expected:
    """What a job must end as: its status and each feature's (status, error code)."""

    status: str
    features: dict[str, tuple[str, str | None]]


def all_succeed(job: BatchJob) -> Expected:
    """A job whose every feature succeeds."""
    return Expected("succeeded", {f: ("succeeded", None) for f in job.features})


def _diff(expected: Any, actual: Any, path: str = "") -> list[str]:
    if isinstance(expected, dict) and isinstance(actual, dict):
        found = []
        for key in sorted(set(expected) | set(actual), key=str):
            sub = f"{path}.{key}" if path else str(key)
            if key not in actual:
                found.append(f"{sub}: missing from the snapshot")
            elif key not in expected:
                found.append(f"{sub}: not in the database's resource")
            else:
                found += _diff(expected[key], actual[key], sub)
        return found
    if expected != actual:
        return [f"{path}: database {_short(expected)} != snapshot {_short(actual)}"]
    return []


def _unsigned(value: Any) -> Any:
    """An answer with its artifact URLs' signatures dropped (they are added as the API
    answers; the snapshot and the database hold the bare paths)."""
    if isinstance(value, dict):
        return {
            key: item.split("?", 1)[0]
            if key in URL_FIELDS and isinstance(item, str)
            else _unsigned(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_unsigned(item) for item in value]
    return value


def _short(value: Any) -> str:
    shown = json.dumps(value, default=str)
    return shown if len(shown) <= 120 else shown[:117] + "..."


def check_outcomes(
    rig: ChaosRig,
    jobs: list[BatchJob],
    finals: dict[str, dict[str, Any]],
    expected: dict[str, Expected],
) -> list[str]:
    """Each final job's status and every feature's (status, error code) as expected."""
    problems = []
    for job in jobs:
        final = finals.get(job.id)
        if final is None:
            continue  # reported by wait_final
        want = expected[job.marker]
        if set(final["features"]) != set(job.features):
            problems.append(f"{job.marker}: features {sorted(final['features'])} != {job.features}")
        got_features = {
            f: (v["status"], (v.get("error") or {}).get("code"))
            for f, v in final["features"].items()
        }
        wrong = {
            f: {"want": want.features[f], "got": got_features.get(f)}
            for f in want.features
            if got_features.get(f) != want.features[f]
        }
        if final["status"] != want.status or wrong:
            errors = {
                f: (v.get("error") or {}).get("message", "")[:160]
                for f, v in final["features"].items()
                if f in wrong and v.get("error")
            }
            problems.append(
                f"{job.marker} ({job.kind}): job {final['status']} (want {want.status}); "
                f"features {wrong}; errors {errors}"
            )
        for f, v in final["features"].items():
            if v["status"] == "succeeded" and not v.get("result"):
                problems.append(f"{job.marker}.{f}: succeeded without a result")
    return problems


def check_rows(rig: ChaosRig, jobs: list[BatchJob]) -> list[str]:
    """One feature_runs row per requested feature, no other; every artifact a
    stylize/card result names exists once, with its file; none stored twice."""
    problems = []
    with rig.db().connect() as conn:
        rows = conn.execute(text("SELECT job_id, feature, status, result FROM feature_runs")).all()
        artifacts = conn.execute(text("SELECT id, job_id, role, storage_key FROM artifacts")).all()
    features: dict[str, list[tuple[str, str, Any]]] = {}
    for job_id, feature, status, result in rows:
        features.setdefault(str(job_id), []).append((feature, status, result))
    roles: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for art_id, job_id, role, key in artifacts:
        roles.setdefault((str(job_id), role), []).append((str(art_id), key))
        if not (rig.media_dir / key).is_file():
            problems.append(f"artifact {art_id} ({role}) has no file {key}")
    for job in jobs:
        stored = features.get(job.id, [])
        names = sorted(f for f, _, _ in stored)
        if names != sorted(job.features):
            problems.append(f"{job.marker}: feature rows {names} != {sorted(job.features)}")
        by_name = {f: (s, r) for f, s, r in stored}
        inputs = {JobKind.PHOTOCARD: "photo", JobKind.VIDEO: "thumbnail"}[job.kind]
        if len(roles.get((job.id, inputs), [])) != 1:
            problems.append(
                f"{job.marker}: {len(roles.get((job.id, inputs), []))} {inputs} artifacts"
            )
        for role in IMAGE_FEATURES:
            if role not in by_name:
                continue
            status, result = by_name[role]
            made = roles.get((job.id, role), [])
            if status == "succeeded":
                if len(made) != 1:
                    problems.append(f"{job.marker}.{role}: {len(made)} {role} artifacts (want 1)")
                elif (result or {}).get("artifact_id") != made[0][0]:
                    problems.append(
                        f"{job.marker}.{role}: result names {(result or {}).get('artifact_id')}"
                        f", the artifact is {made[0][0]}"
                    )
            elif made:
                problems.append(f"{job.marker}.{role}: {status} but {len(made)} artifacts")
    return problems


def orphan_files(rig: ChaosRig) -> list[str]:
    """Media files no artifact row names (a write whose commit failed, a duplicate)."""
    with rig.db().connect() as conn:
        keys = {k for (k,) in conn.execute(text("SELECT storage_key FROM artifacts"))}
    if not rig.media_dir.exists():
        return []
    return sorted(
        str(p.relative_to(rig.media_dir))
        for p in rig.media_dir.rglob("*")
        if p.is_file() and str(p.relative_to(rig.media_dir)) not in keys
    )


def check_attempts(rig: ChaosRig, jobs: list[BatchJob], *, exactly_one: bool = False) -> list[str]:
    """Every feature's attempts (claims) within the cap, or exactly one."""
    cap = int(rig.env_values.get("REFRACT_MAX_ATTEMPTS", "3"))
    ids = {job.id: job for job in jobs}
    problems = []
    with rig.db().connect() as conn:
        rows = conn.execute(text("SELECT job_id, feature, attempts FROM feature_runs")).all()
    for job_id, feature, attempts in rows:
        job = ids.get(str(job_id))
        if job is None:
            continue
        if attempts > cap or attempts < 1 or (exactly_one and attempts != 1):
            want = "exactly 1" if exactly_one else f"1..{cap}"
            problems.append(f"{job.marker}.{feature}: {attempts} attempts (want {want})")
    return problems


def check_snapshots(rig: ChaosRig, jobs: list[BatchJob], settle_s: float = 10) -> list[str]:
    """Each job's Redis snapshot (raw, and as GET answers it) equals the resource built
    from the database. A difference may last a moment (a publish right after a
    commit); one that lasts ``settle_s`` is a false state shown to clients."""
    deadline = time.monotonic() + settle_s
    while True:
        problems = _snapshot_problems(rig, jobs)
        if not problems or time.monotonic() > deadline:
            return problems
        time.sleep(0.5)


def _snapshot_problems(rig: ChaosRig, jobs: list[BatchJob]) -> list[str]:
    problems = []
    with rig.redis.client() as client:
        for job in jobs:
            want = rig.database_resource(job.id)
            if want is None:
                problems.append(f"{job.marker}: not in the database")
                continue
            raw = client.hget(ProgressBus.snapshot_key(job.id), "body")
            if raw is not None:
                found = _diff(want, json.loads(raw))
                problems += [f"{job.marker} redis snapshot: {d}" for d in found[:6]]
            response = rig.http().get(f"/api/v1/jobs/{job.id}")
            if response.status_code != 200:
                problems.append(f"{job.marker}: GET answered {response.status_code}")
                continue
            found = _diff(want, _unsigned(response.json()))
            problems += [f"{job.marker} GET: {d}" for d in found[:6]]
            if raw is None and client.hget(ProgressBus.snapshot_key(job.id), "body") is None:
                problems.append(f"{job.marker}: GET did not refill the missing snapshot")
    return problems


def check_model_calls(
    rig: ChaosRig,
    jobs: list[BatchJob],
    in_flight: set[FeatureKey],
    *,
    succeeded_only: bool = True,
) -> list[str]:
    """At most one successful model answer per job x feature, unless the feature was
    in flight at the fault; every succeeded feature got at least one."""
    markers = {job.marker for job in jobs}
    ids = {job.marker: job.id for job in jobs}
    keyed = [(a.key, a) for a in rig.fake.answers if a.key is not None]
    ok = Counter(key for key, a in keyed if key[0] in markers and a.successful)
    calls = Counter(key for key, _ in keyed if key[0] in markers)
    problems = []
    for key, count in sorted(ok.items()):
        if count > 1 and key not in in_flight:
            problems.append(
                f"{key[0]}.{key[1]} (job {ids[key[0]]}): {count} successful answers, "
                f"calls at {_call_times(rig, key)}, but it was not in flight at the fault"
            )
    with rig.db().connect() as conn:
        rows = conn.execute(text("SELECT job_id, feature, status FROM feature_runs")).all()
    by_id = {job.id: job for job in jobs if not job.probe}
    for job_id, feature, status in rows:
        job = by_id.get(str(job_id))
        if job is None or status != "succeeded" or not succeeded_only:
            continue
        if ok[job.key(feature)] == 0:
            problems.append(
                f"{job.marker}.{feature}: succeeded with no successful model answer "
                f"({calls[job.key(feature)]} calls)"
            )
    return problems


def _call_times(rig: ChaosRig, key: FeatureKey) -> str:
    """When ``key`` was called, relative to the fault if there was one."""
    zero = rig.fault_at if rig.fault_at is not None else 0.0
    return ", ".join(
        f"{a.received_at - zero:+.1f}s ({a.outcome})" for a in rig.fake.answers_for(key)
    ) + (" from the fault" if rig.fault_at is not None else "")


def verify(
    rig: ChaosRig,
    findings: Findings,
    jobs: list[BatchJob],
    *,
    deadline: float,
    bound: str,
    expected: dict[str, Expected] | None = None,
    in_flight: set[FeatureKey],
    exactly_one_attempt: bool = False,
    label: str = "",
) -> None:
    """Wait for every job to be final by ``deadline``, then run every check (each
    named with ``label``, so that two sets of jobs are judged apart)."""
    suffix = f" ({label})" if label else ""

    def check(name: str, problems: Iterable[str]) -> None:
        findings.check(name + suffix, problems)

    started = time.monotonic()
    finals, late = rig.wait_final(jobs, deadline)
    findings.note(
        f"{len(finals)} of {len(jobs)} jobs{suffix} final "
        f"{time.monotonic() - started:.1f}s after the wait began"
    )
    want = expected or {}
    want = {job.marker: want.get(job.marker) or all_succeed(job) for job in jobs}
    check(f"every job final within {bound}", late)
    if not rig.database_up():
        check("the database is readable after the fault", ["it is not"])
        return
    check("every job ends in the correct state", check_outcomes(rig, jobs, finals, want))
    check("no feature lost or stored twice", check_rows(rig, jobs))
    check(
        "attempts within the cap" + (" (exactly one)" if exactly_one_attempt else ""),
        check_attempts(rig, jobs, exactly_one=exactly_one_attempt),
    )
    if rig.stack_alive():
        check("each job's snapshot equals its database state", check_snapshots(rig, jobs))
    check(
        "model calls repeated only for features in flight at the fault",
        check_model_calls(rig, jobs, in_flight),
    )
    orphans = orphan_files(rig)
    if orphans:
        findings.note(f"media files no artifact names (not failed on): {orphans[:10]}")
    called_again = repeated(rig, {job.marker for job in jobs})
    findings.note(
        f"features{suffix} called more than once: "
        + (", ".join(f"{m}.{f}x{n}" for (m, f), n in sorted(called_again.items())) or "none")
    )


def repeated(rig: ChaosRig, markers: set[str]) -> dict[FeatureKey, int]:
    """Features of jobs ``markers`` that were called more than once, with their counts."""
    calls = Counter(a.key for a in rig.fake.answers if a.key and a.key[0] in markers)
    return {key: n for key, n in calls.items() if n > 1}
