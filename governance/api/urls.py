"""Monitoring API under /api/v1/models/<name>/versions/<version>/: baseline, inferences, drift, fairness, monitor."""

from django.urls import path

from governance.api import monitoring_views as views

PREFIX = "models/<str:name>/versions/<str:version>/"

urlpatterns = [
    path(PREFIX + "baseline/", views.BaselineView.as_view(), name="api-version-baseline"),
    path(PREFIX + "inferences/", views.InferencesView.as_view(), name="api-version-inferences"),
    path(PREFIX + "drift/", views.DriftRunsView.as_view(), name="api-version-drift"),
    path(PREFIX + "fairness/", views.FairnessView.as_view(), name="api-version-fairness"),
    path(PREFIX + "monitor/", views.MonitorView.as_view(), name="api-version-monitor"),
]
