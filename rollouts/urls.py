from __future__ import annotations

from django.urls import path

from rollouts import views

app_name = "rollouts"
urlpatterns = [
    path("", views.rollout_list, name="list"),
    path("new/", views.rollout_create, name="create"),
    path("approvals/panel/", views.approval_queue_panel, name="approval_queue"),
    path("<int:rollout_id>/", views.rollout_detail, name="detail"),
    path("<int:rollout_id>/start/", views.rollout_start, name="start"),
    path("<int:rollout_id>/advance/", views.rollout_advance, name="advance"),
    path("<int:rollout_id>/pause/", views.rollout_pause, name="pause"),
    path("<int:rollout_id>/resume/", views.rollout_resume, name="resume"),
    path("<int:rollout_id>/rollback/", views.rollout_rollback, name="rollback"),
    path("<int:rollout_id>/abort/", views.rollout_abort, name="abort"),
    path("<int:rollout_id>/promotion/request/", views.promotion_request, name="promotion_request"),
    path("<int:rollout_id>/promotion/approve/", views.promotion_approve, name="promotion_approve"),
    path("<int:rollout_id>/promotion/reject/", views.promotion_reject, name="promotion_reject"),
]
