"""What governance adds to the registry's pages (settings FORGE_VERSION_BADGES / FORGE_VERSION_LINKS)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.urls import reverse

from forge_site.models import Job
from forge_site.roles import user_can
from governance.models import Baseline, BaselineStatus


def drift_badges(versions: Sequence[Any]) -> dict[int, list[dict[str, str]]]:
    """A drift badge per version that has a ready baseline: the verdict of its latest drift run.

    One query finds the versions with a baseline; then one indexed query per such version reads only the latest
    run's dataset verdict (never the whole result)."""
    monitored = set(
        Baseline.objects.filter(version__in=versions, status=BaselineStatus.READY).values_list("version_id", flat=True)
    )
    badges: dict[int, list[dict[str, str]]] = {}
    for version in versions:
        if version.pk not in monitored:
            continue
        url = reverse("governance:monitoring", args=[version.model.name, version.version])
        latest = (
            Job.objects.filter(
                kind="drift",
                status="succeeded",
                subject_type="models_registry.modelversion",
                subject_id=str(version.pk),
            )
            .order_by("-finished_at")
            .values("finished_at", "result__dataset")
            .first()
        )
        if latest is None or not latest["result__dataset"]:
            badge = {"label": "no drift run", "level": "idle", "title": "A baseline is set; no drift run yet."}
        else:
            dataset = latest["result__dataset"]
            drifted, judged = dataset.get("drifted_features", 0), dataset.get("judged_features", 0)
            when = f"{latest['finished_at']:%Y-%m-%d %H:%M} UTC"
            if dataset.get("drifted"):
                badge = {"label": f"drift {drifted}/{judged}", "level": "bad", "title": f"Dataset drift ({when})"}
            elif drifted:
                badge = {
                    "label": f"drift {drifted}/{judged}",
                    "level": "warn",
                    "title": f"Some features drifted ({when})",
                }
            else:
                badge = {"label": "no drift", "level": "ok", "title": f"No feature drifted ({when})"}
        badges[version.pk] = [{**badge, "url": url, "kind": "drift"}]
    return badges


def monitoring_links(version: Any, user: Any) -> list[dict[str, str]]:
    if not user_can(user, "monitoring.view"):
        return []
    return [
        {"label": "Monitoring", "url": reverse("governance:monitoring", args=[version.model.name, version.version])}
    ]
