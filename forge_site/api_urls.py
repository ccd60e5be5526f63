"""Kernel API under /api/v1/: jobs and the caller's tokens."""

from django.urls import path

from forge_site import api_views

urlpatterns = [
    path("jobs/", api_views.JobListView.as_view(), name="api-jobs"),
    path("jobs/<uuid:id>/", api_views.JobDetailView.as_view(), name="api-job"),
    path("jobs/<uuid:id>/cancel/", api_views.JobCancelView.as_view(), name="api-job-cancel"),
    path("tokens/", api_views.TokenListCreateView.as_view(), name="api-tokens"),
    path("tokens/<str:prefix>/", api_views.TokenRevokeView.as_view(), name="api-token"),
]
