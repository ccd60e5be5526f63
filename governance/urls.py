"""Governance pages under /governance/."""

from django.urls import path

from governance.views import monitoring

app_name = "governance"
urlpatterns = [
    path(
        "models/<str:name>/versions/<str:version>/monitoring/",
        monitoring.monitoring_page,
        name="monitoring",
    ),
    path(
        "models/<str:name>/versions/<str:version>/monitoring/drift/",
        monitoring.drift_run_start,
        name="drift_start",
    ),
]
