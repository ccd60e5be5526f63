from __future__ import annotations

from django.urls import path

from models_registry import evaluation_views, views

app_name = "registry"
urlpatterns = [
    path("", views.model_list, name="model_list"),
    path("create/", views.model_create, name="model_create"),
    path("panel/", views.dashboard_panel, name="dashboard_panel"),
    path("models/<str:name>/", views.model_detail, name="model_detail"),
    path("models/<str:name>/edit/", views.model_edit, name="model_edit"),
    path("models/<str:name>/retire/", views.model_retire, name="model_retire"),
    path("models/<str:name>/upload/", views.version_upload, name="version_upload"),
    path("models/<str:name>/versions/<str:version>/", views.version_detail, name="version_detail"),
    path("models/<str:name>/versions/<str:version>/retire/", views.version_retire, name="version_retire"),
    path(
        "models/<str:name>/versions/<str:version>/download/<str:kind>/",
        views.version_download,
        name="version_download",
    ),
]

urlpatterns += [
    path("models/<str:name>/versions/<str:version>/parity/", evaluation_views.parity_start, name="parity_start"),
    path(
        "models/<str:name>/versions/<str:version>/benchmarks/",
        evaluation_views.benchmark_start,
        name="benchmark_start",
    ),
    path(
        "models/<str:name>/versions/<str:version>/evidence/",
        evaluation_views.version_evidence,
        name="version_evidence",
    ),
    path(
        "models/<str:name>/versions/<str:version>/runs/<uuid:job_id>/",
        evaluation_views.run_detail,
        name="run_detail",
    ),
    path("models/<str:name>/benchmarks/compare/", evaluation_views.benchmark_compare, name="benchmark_compare"),
]
