"""Registry API under /api/v1/: models, versions, artifacts and (read-only) aliases."""

from django.urls import path

from models_registry.api import evaluation_views, views

urlpatterns = [
    path("models/", views.ModelListCreateView.as_view(), name="api-models"),
    path("models/<str:name>/", views.ModelDetailView.as_view(), name="api-model"),
    path("models/<str:name>/retire/", views.ModelRetireView.as_view(), name="api-model-retire"),
    path("models/<str:name>/versions/", views.VersionListCreateView.as_view(), name="api-versions"),
    path("models/<str:name>/versions/<str:version>/", views.VersionDetailView.as_view(), name="api-version"),
    path(
        "models/<str:name>/versions/<str:version>/retire/",
        views.VersionRetireView.as_view(),
        name="api-version-retire",
    ),
    path(
        "models/<str:name>/versions/<str:version>/artifact/",
        views.VersionArtifactView.as_view(),
        name="api-version-artifact",
    ),
    path("models/<str:name>/aliases/", views.AliasListView.as_view(), name="api-aliases"),
    path("models/<str:name>/aliases/<str:alias>/", views.AliasDetailView.as_view(), name="api-alias"),
    path("models/<str:name>/aliases/<str:alias>/history/", views.AliasHistoryView.as_view(), name="api-alias-history"),
]

urlpatterns += [
    path(
        "models/<str:name>/versions/<str:version>/parity/",
        evaluation_views.ParityRunsView.as_view(),
        name="api-version-parity",
    ),
    path(
        "models/<str:name>/versions/<str:version>/benchmarks/",
        evaluation_views.BenchmarkRunsView.as_view(),
        name="api-version-benchmarks",
    ),
    path(
        "models/<str:name>/benchmarks/compare/",
        evaluation_views.BenchmarkCompareView.as_view(),
        name="api-benchmark-compare",
    ),
]
