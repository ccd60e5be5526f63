"""URL map. Every view declares the action it needs (forge_site.roles); tests walk this map as every role."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from forge_site import health, views
from forge_site.roles import require_action

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", health.healthz, name="healthz"),
    path("accounts/", include("forge_site.auth_urls")),
    path("audit/", include("forge_site.audit_urls")),
    path("jobs/", include("forge_site.job_urls")),
    path("registry/", include("models_registry.urls")),
    path("api/v1/", include("forge_site.api_urls")),
    path("api/v1/", include("models_registry.api.urls")),
    path("api/schema/", require_action("site.public")(SpectacularAPIView.as_view()), name="api-schema"),
    path(
        "api/docs/",
        require_action("site.public")(SpectacularSwaggerView.as_view(url_name="api-schema")),
        name="api-docs",
    ),
    path("admin/", admin.site.urls),
]
