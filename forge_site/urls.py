"""URL map. Every view declares the action it needs (forge_site.roles); tests walk this map as every role."""

from csp.decorators import csp_update
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from forge_site import health, views
from forge_site.observability import views as observability_views
from forge_site.roles import require_action

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", health.healthz, name="healthz"),
    path("metrics", observability_views.metrics, name="metrics"),
    path("accounts/", include("forge_site.auth_urls")),
    path("audit/", include("forge_site.audit_urls")),
    path("jobs/", include("forge_site.job_urls")),
    path("registry/", include("models_registry.urls")),
    path("reports/", include("governance.report_urls")),
    path("alerts/", include("governance.alert_urls")),
    path("api/v1/", include("forge_site.api_urls")),
    path("api/v1/", include("models_registry.api.urls")),
    path("api/v1/", include("governance.api.report_urls")),
    path("governance/", include("governance.urls")),
    path("api/v1/", include("governance.api.urls")),
    path("api/v1/", include("governance.api.alert_urls")),
    path("api/v1/", include("rollouts.api.urls")),
    path("rollouts/", include("rollouts.urls")),
    path("api/schema/", require_action("site.public")(SpectacularAPIView.as_view()), name="api-schema"),
    path(
        "api/docs/",
        # The split view loads its start-up script from `?script` instead of inline; Swagger UI's stylesheet
        # draws its icons from data: URIs, allowed here only.
        csp_update({"img-src": ["data:"]})(
            require_action("site.public")(SpectacularSwaggerSplitView.as_view(url_name="api-schema"))
        ),
        name="api-docs",
    ),
    path("admin/", admin.site.urls),
]
