from __future__ import annotations

from django.urls import path

from models_registry import views

app_name = "registry"
urlpatterns = [
    path("", views.model_list, name="model_list"),
    path("create/", views.model_create, name="model_create"),
    path("panel/", views.dashboard_panel, name="dashboard_panel"),
    path("models/<str:name>/", views.model_detail, name="model_detail"),
    path("models/<str:name>/edit/", views.model_edit, name="model_edit"),
    path("models/<str:name>/upload/", views.version_upload, name="version_upload"),
    path("models/<str:name>/versions/<str:version>/", views.version_detail, name="version_detail"),
    path(
        "models/<str:name>/versions/<str:version>/download/<str:kind>/",
        views.version_download,
        name="version_download",
    ),
]
