"""Evidence from test runs: parity and benchmark jobs that finished within the period."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from forge_site.models import Job, JobStatus
from governance.nist_rmf.mapping import Kind, KindEvidence
from governance.reports.collectors.base import evidence_item
from governance.reports.scope import ReportScope
from models_registry.evidence import reference_text
from models_registry.models import ModelVersion

VERSION_SUBJECT = "models_registry.modelversion"
COUNTED = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.TIMED_OUT)  # a cancelled run is no evidence either way


def _runs(scope: ReportScope, kind: str) -> tuple[list[Job], dict[str, ModelVersion]]:
    versions = {str(v.pk): v for v in scope.versions}
    jobs = list(
        Job.objects.filter(
            kind=kind,
            subject_type=VERSION_SUBJECT,
            subject_id__in=list(versions),
            status__in=COUNTED,
            finished_at__gte=scope.start,
            finished_at__lte=scope.end,
        )
        .select_related("created_by")
        .order_by("finished_at", "pk")
    )
    return jobs, versions


def _ref(job: Job, version: ModelVersion) -> dict[str, str]:
    path = reverse(
        "registry:run_detail", kwargs={"name": version.model.name, "version": version.version, "job_id": job.pk}
    )
    return {"type": "job", "id": str(job.pk), "path": path}


def _untested(scope: ReportScope, tested: set[str], what: str) -> list[str]:
    return [
        f"{version.model.name} {version.version} has no {what} in the period"
        for version in scope.versions_in_service()
        if str(version.pk) not in tested
    ]


def _parity_values(job: Job) -> dict[str, Any]:
    result = job.result or {}
    outputs = []
    for output in result.get("outputs") or []:
        histogram = output.get("histogram") or {}
        outputs.append(
            {
                key: output.get(key)
                for key in (
                    "path",
                    "shape",
                    "dtype",
                    "elements",
                    "max_abs_error",
                    "max_rel_error",
                    "mean_abs_error",
                    "out_of_tolerance",
                    "cosine_similarity",
                    "argmax_agreement",
                    "passed",
                )
            }
            | {"histogram": {k: histogram.get(k) for k in ("log10_edges", "counts", "exact")}}
        )
    params = job.params or {}
    return {
        "status": job.status,
        "passed": result.get("passed"),
        "summary": result.get("summary") or job.error,
        "reference": reference_text(params.get("reference")),
        "samples": result.get("samples", params.get("samples")),
        "batch_size": params.get("batch_size"),
        "seed": params.get("seed"),
        "device": (result.get("candidate") or {}).get("device") or params.get("device"),
        "dtype": (result.get("candidate") or {}).get("dtype") or params.get("dtype"),
        "tolerance": result.get("tolerance"),
        "tool_versions": result.get("versions"),
        "outputs": outputs,
        "sha256": params.get("sha256"),
        "started_by": job.created_by.get_username() if job.created_by else "",
        "finished_at": job.finished_at,
    }


def collect_parity(scope: ReportScope) -> KindEvidence:
    jobs, versions = _runs(scope, "parity")
    items = []
    for job in jobs:
        version = versions[job.subject_id]
        values = _parity_values(job)
        passed = job.status == JobStatus.SUCCEEDED and values["passed"] is True
        worst = max((o["max_abs_error"] or 0.0 for o in values["outputs"]), default=None)
        label = f"{version.model.name} {version.version}"
        verdict = "PASS" if passed else ("FAIL" if job.status == JobStatus.SUCCEEDED else job.get_status_display())
        summary = f"parity {label} vs {values['reference']}: {verdict}"
        if worst is not None:
            summary += f", max abs error {worst:.3g}"
        if values["samples"]:
            summary += f" over {values['samples']:,} samples"
        items.append(
            evidence_item(
                kind=Kind.PARITY,
                key=f"job:{job.pk}",
                title=f"Parity run of {label}",
                summary=summary,
                ok=passed,
                at=job.finished_at,
                model=version.model.name,
                version=version.version,
                ref=_ref(job, version),
                values=values,
            )
        )
    tested = {job.subject_id for job in jobs}
    return KindEvidence(Kind.PARITY, tuple(items), tuple(_untested(scope, tested, "parity run")))


def _benchmark_values(job: Job) -> dict[str, Any]:
    result = job.result or {}
    rows = [
        {
            "batch_size": row.get("batch_size"),
            "latency_ms": {k: (row.get("latency_ms") or {}).get(k) for k in ("p50", "p95", "p99")},
            "throughput_sps": row.get("throughput_sps"),
            "stable": row.get("stable"),
            "peak_memory_bytes": row.get("peak_memory_bytes"),
        }
        for row in sorted(result.get("results") or [], key=lambda row: row.get("batch_size") or 0)
    ]
    fingerprint = result.get("fingerprint") or {}
    return {
        "status": job.status,
        "error": job.error,
        "device": result.get("device") or (job.params or {}).get("device"),
        "dtype": result.get("dtype") or (job.params or {}).get("dtype"),
        "threads": result.get("threads"),
        "rows": rows,
        "fingerprint": {
            k: fingerprint.get(k)
            for k in ("cpu_model", "gpu_name", "torch", "cuda", "threads", "device")
            if k in fingerprint
        },
        "started_by": job.created_by.get_username() if job.created_by else "",
        "finished_at": job.finished_at,
    }


def collect_benchmark(scope: ReportScope) -> KindEvidence:
    jobs, versions = _runs(scope, "benchmark")
    items = []
    for job in jobs:
        version = versions[job.subject_id]
        values = _benchmark_values(job)
        label = f"{version.model.name} {version.version}"
        ok = job.status == JobStatus.SUCCEEDED and bool(values["rows"])
        if ok:
            figures = ", ".join(
                f"batch {row['batch_size']} p50 {row['latency_ms']['p50']:.3g} ms"
                for row in values["rows"][:3]
                if row["latency_ms"]["p50"] is not None
            )
            unstable = [str(row["batch_size"]) for row in values["rows"] if row["stable"] is False]
            summary = f"benchmark {label} on {values['device']} {values['dtype']}: {figures}"
            if unstable:
                summary += f" (not stable at batch {', '.join(unstable)})"
        else:
            summary = f"benchmark {label}: {job.get_status_display().lower()}: {job.error[:120]}"
        items.append(
            evidence_item(
                kind=Kind.BENCHMARK,
                key=f"job:{job.pk}",
                title=f"Benchmark run of {label}",
                summary=summary,
                ok=ok,
                at=job.finished_at,
                model=version.model.name,
                version=version.version,
                ref=_ref(job, version),
                values=values,
            )
        )
    tested = {job.subject_id for job in jobs}
    return KindEvidence(Kind.BENCHMARK, tuple(items), tuple(_untested(scope, tested, "benchmark run")))
