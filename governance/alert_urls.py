"""Alert pages under /alerts/."""

from __future__ import annotations

from django.urls import path

from governance.views import alerts

app_name = "alerts"
urlpatterns = [
    path("", alerts.alert_list, name="list"),
    path("<int:alert_id>/", alerts.alert_detail, name="detail"),
    path("rules/", alerts.rule_list, name="rule_list"),
    path("rules/new/", alerts.rule_create, name="rule_create"),
    path("rules/<int:rule_id>/edit/", alerts.rule_edit, name="rule_edit"),
    path("rules/<int:rule_id>/delete/", alerts.rule_delete, name="rule_delete"),
    path("destinations/", alerts.destination_list, name="destination_list"),
    path("destinations/new/", alerts.destination_create, name="destination_create"),
    path("destinations/<int:destination_id>/", alerts.destination_detail, name="destination_detail"),
    path("destinations/<int:destination_id>/edit/", alerts.destination_edit, name="destination_edit"),
    path("destinations/<int:destination_id>/delete/", alerts.destination_delete, name="destination_delete"),
    path("destinations/<int:destination_id>/test/", alerts.destination_test, name="destination_test"),
]
