"""The monitoring page of a version: drift by feature, distributions, drift over time, fairness, and a run button."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST, require_safe

from forge_site.jobs import JobKeyReused
from forge_site.roles import require_action
from governance import charts, selectors
from governance.drift import DriftOptions
from governance.drift.sketch import WindowSketch, merge_sketches
from governance.reference import reference_for
from governance.selectors.alerts import alerts_section
from governance.services import monitoring
from governance.services.baselines import MonitoringError
from models_registry.api.views import _version_or_404

WINDOWS = {"1": 1, "7": 7, "30": 30}
MAX_OVERLAYS = 6
MAX_TIMELINE = 8


def _window_days(request: HttpRequest) -> int:
    return WINDOWS.get(request.GET.get("days", "7"), 7)


@require_action("monitoring.view")
@require_safe
def monitoring_page(request: HttpRequest, name: str, version: str) -> HttpResponse:
    mv = _version_or_404(name, version)
    days = _window_days(request)
    end = (timezone.now() + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    baseline = selectors.latest_baseline(mv)
    run = selectors.latest_drift(mv)
    context: dict[str, Any] = {
        "model": mv.model,
        "version": mv,
        "baseline": baseline,
        "run": run,
        "result": run.result if run else None,
        "submission": uuid.uuid4().hex,
        "raw_limit": settings.FORGE_DRIFT_RAW_ROW_LIMIT,
        "days": days,
        "windows": list(WINDOWS),
        "start": start,
        "end": end,
        "figures": {},
        "overlays": [],
        "alerts_section": alerts_section(version=mv),
    }
    if baseline is not None and baseline.status == "ready":
        reference = reference_for(baseline)
        windows = list(
            selectors.sketch_windows(mv, reference.layout.fingerprint, start, end).values_list("start", "sketch")
        )
        sketches = [WindowSketch.from_bytes(reference.layout, bytes(blob)) for _, blob in windows]
        current = merge_sketches(sketches) if sketches else WindowSketch.empty(reference.layout)
        live = monitoring.sketches_drift(reference.sketch, current, DriftOptions(), prediction=reference.prediction)
        context["live"] = live
        context["logged_rows"] = current.rows
        shown = context["result"] or live
        order = [f["name"] for f in shown["features"]]
        if shown.get("prediction"):
            order.append(shown["prediction"]["name"])
        for feature_name in order[:MAX_OVERLAYS]:
            figure = charts.overlay(reference.sketch, current, feature_name)
            if figure is not None:
                chart_id = f"overlay-{len(context['overlays'])}"
                context["overlays"].append({"name": feature_name, "chart_id": chart_id})
                context["figures"][chart_id] = figure
        per_day = []
        for day in charts.day_starts(start, end):
            inside = [
                s for (when, _), s in zip(windows, sketches, strict=True) if day <= when < day + timedelta(days=1)
            ]
            merged = merge_sketches(inside) if inside else None
            per_day.append(
                (day, monitoring.sketches_drift(reference.sketch, merged, DriftOptions()) if merged else None)
            )
        context["figures"]["timeline"] = charts.timeline(per_day, [f["name"] for f in live["features"]][:MAX_TIMELINE])
        context["fairness"] = monitoring.fairness_compute(version=mv, start=start, end=end)
    context["figure_items"] = list(context["figures"].items())
    return render(request, "governance/monitoring.html", context)


@require_action("drift.run")
@require_POST
def drift_run_start(request: HttpRequest, name: str, version: str) -> HttpResponse:
    mv = _version_or_404(name, version)
    days = WINDOWS.get(request.POST.get("days", "7"), 7)
    end = timezone.now()
    back = reverse("governance:monitoring", args=[name, version]) + f"?days={days}"
    try:
        job = monitoring.drift_start(
            version=mv,
            actor=request.user,
            start=end - timedelta(days=days),
            end=end,
            idempotency_key=f"form:{request.POST['submission']}" if request.POST.get("submission") else "",
        )
    except (MonitoringError, JobKeyReused) as exc:
        messages.error(request, getattr(exc, "message", str(exc)))
        return HttpResponseRedirect(back)
    messages.success(request, f"Drift run queued over the last {days} days (job {str(job.pk)[:8]}).")
    return HttpResponseRedirect(reverse("jobs:detail", args=[job.pk]))
