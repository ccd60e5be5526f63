"""Alerts API under /api/v1/alerts/."""

from django.urls import path

from governance.api import alerts

urlpatterns = [
    path("alerts/", alerts.AlertListView.as_view(), name="api-alerts"),
    path("alerts/<int:alert_id>/", alerts.AlertDetailView.as_view(), name="api-alert"),
    path("alerts/rules/", alerts.RuleListCreateView.as_view(), name="api-alert-rules"),
    path("alerts/rules/<int:rule_id>/", alerts.RuleDetailView.as_view(), name="api-alert-rule"),
    path("alerts/destinations/", alerts.DestinationListCreateView.as_view(), name="api-alert-destinations"),
    path(
        "alerts/destinations/<int:destination_id>/",
        alerts.DestinationDetailView.as_view(),
        name="api-alert-destination",
    ),
    path(
        "alerts/destinations/<int:destination_id>/test/",
        alerts.DestinationTestView.as_view(),
        name="api-alert-destination-test",
    ),
    path("alerts/deliveries/", alerts.DeliveryListView.as_view(), name="api-alert-deliveries"),
    path("alerts/deliveries/<int:delivery_id>/", alerts.DeliveryDetailView.as_view(), name="api-alert-delivery"),
]
