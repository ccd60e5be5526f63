"""The evidence a promotion needs (the model's promotion policy), each requirement met or not, with its evidence.

Defaults, for a model without a policy (PromotionPolicy's field defaults): a passing parity run of the challenger
against the champion; a benchmark of the challenger whose p95 is at most 1.2 times the champion's, measured on the
same hardware (same fingerprint) at the smallest batch size both ran; no open drift alert on the challenger; and at
least 1,000 requests served by the challenger in the rollout.

A requirement reads "not available" when Forge cannot check it (the drift monitoring of governance not installed):
it is shown, recorded with the decision, and does not block approval.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from django.urls import reverse

from forge_site.models import Job, JobStatus
from models_registry import selectors as registry_selectors
from rollouts.models import PromotionPolicy, Rollout
from rollouts.selectors import Traffic, traffic_window

MET = "met"
UNMET = "unmet"
NOT_AVAILABLE = "not available"


@dataclass(frozen=True)
class Requirement:
    key: str
    label: str
    status: str  # met | unmet | not available
    detail: str
    evidence_url: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def policy_for(rollout: Rollout) -> PromotionPolicy:
    """The model's policy, or an unsaved one with the defaults."""
    policy = PromotionPolicy.objects.filter(model=rollout.model).first()
    return policy if policy is not None else PromotionPolicy(model=rollout.model)


def _run_url(rollout: Rollout, version_string: str, job: Job) -> str:
    return reverse(
        "registry:run_detail", kwargs={"name": rollout.model.name, "version": version_string, "job_id": job.pk}
    )


def _parity(rollout: Rollout) -> Requirement:
    label = f"Parity of {rollout.challenger.version} against {rollout.champion.version}"
    runs = registry_selectors.version_evaluations(version=rollout.challenger, kind="parity").filter(
        params__reference__kind="version", params__reference__version_id=rollout.champion.pk
    )
    finished = runs.filter(status=JobStatus.SUCCEEDED).first()
    if finished is None:
        latest = runs.first()
        if latest is not None:
            return Requirement(
                "parity",
                label,
                UNMET,
                f"The latest parity run is {latest.status}.",
                _run_url(rollout, rollout.challenger.version, latest),
            )
        return Requirement("parity", label, UNMET, "No parity run of the challenger against the champion yet.")
    result = finished.result or {}
    url = _run_url(rollout, rollout.challenger.version, finished)
    if result.get("passed"):
        return Requirement("parity", label, MET, result.get("summary") or "Passed.", url)
    return Requirement("parity", label, UNMET, result.get("summary") or "The parity run did not pass.", url)


def _p95_by_batch(job: Job) -> dict[int, float]:
    rows = (job.result or {}).get("results") or []
    return {
        int(row["batch_size"]): float(row["latency_ms"]["p95"])
        for row in rows
        if row.get("batch_size") and (row.get("latency_ms") or {}).get("p95")
    }


def _benchmark(rollout: Rollout, budget: float) -> Requirement:
    label = f"Benchmark p95 of {rollout.challenger.version} within {budget:g}x of {rollout.champion.version}"

    def runs(version: Any) -> list[Job]:
        return list(
            registry_selectors.version_evaluations(version=version, kind="benchmark").filter(status="succeeded")[:20]
        )

    challenger_runs, champion_runs = runs(rollout.challenger), runs(rollout.champion)
    if not challenger_runs or not champion_runs:
        missing = rollout.challenger.version if not challenger_runs else rollout.champion.version
        return Requirement("benchmark", label, UNMET, f"No finished benchmark of {missing} yet.")
    for challenger_job in challenger_runs:  # newest first: the most recent comparable pair decides
        key = (challenger_job.result or {}).get("fingerprint_key")
        champion_job = next((j for j in champion_runs if (j.result or {}).get("fingerprint_key") == key), None)
        if champion_job is None:
            continue
        ours, theirs = _p95_by_batch(challenger_job), _p95_by_batch(champion_job)
        common = sorted(set(ours) & set(theirs))
        if not common:
            continue
        batch = common[0]
        ratio = ours[batch] / theirs[batch]
        url = reverse("registry:benchmark_compare", kwargs={"name": rollout.model.name})
        url += f"?baseline={champion_job.pk}&job={challenger_job.pk}"
        detail = (
            f"p95 at batch {batch}: {ours[batch]:.3f} ms against {theirs[batch]:.3f} ms, {ratio:.2f}x "
            f"(budget {budget:g}x), same hardware."
        )
        return Requirement("benchmark", label, MET if ratio <= budget else UNMET, detail, url)
    return Requirement(
        "benchmark",
        label,
        UNMET,
        "No benchmarks of the two versions on the same hardware and batch size: run both on the same worker.",
    )


def _drift(rollout: Rollout) -> Requirement:
    label = f"No open drift alert on {rollout.challenger.version}"
    try:
        from governance.selectors import open_alerts  # type: ignore[attr-defined]
    except ImportError:
        return Requirement("drift", label, NOT_AVAILABLE, "Drift monitoring (governance) is not available yet.")
    alerts = list(open_alerts(model=rollout.model, version=rollout.challenger, source="drift"))
    if not alerts:
        return Requirement("drift", label, MET, "No open drift alert.")
    first = alerts[0]
    url = first.get_absolute_url() if hasattr(first, "get_absolute_url") else None
    return Requirement(
        "drift", label, UNMET, f"{len(alerts)} open drift alert(s): {getattr(first, 'message', '')}", url
    )


def _samples(rollout: Rollout, minimum: int, traffic: Traffic) -> Requirement:
    served = traffic.traffic("challenger")
    label = f"At least {minimum:,} requests to the challenger"
    url = reverse("rollouts:detail", kwargs={"rollout_id": rollout.pk}) + "#statistics"
    status = MET if served >= minimum else UNMET
    return Requirement("samples", label, status, f"The challenger has served {served:,}.", url)


def promotion_requirements(*, rollout: Rollout, traffic: Traffic | None = None) -> list[Requirement]:
    policy = policy_for(rollout)
    traffic = traffic if traffic is not None else traffic_window(rollout=rollout)
    requirements = []
    if policy.require_parity:
        requirements.append(_parity(rollout))
    if policy.benchmark_p95_budget is not None:
        requirements.append(_benchmark(rollout, policy.benchmark_p95_budget))
    if policy.require_no_open_drift_alert:
        requirements.append(_drift(rollout))
    requirements.append(_samples(rollout, policy.min_samples, traffic))
    return requirements
