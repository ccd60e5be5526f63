"""Rollout API under /api/v1/rollouts/."""

from django.urls import path

from rollouts.api import views

urlpatterns = [
    path("rollouts/", views.RolloutListCreateView.as_view(), name="api-rollouts"),
    path("rollouts/<int:rollout_id>/", views.RolloutDetailView.as_view(), name="api-rollout"),
    path("rollouts/<int:rollout_id>/start/", views.RolloutStartView.as_view(), name="api-rollout-start"),
    path("rollouts/<int:rollout_id>/advance/", views.RolloutAdvanceView.as_view(), name="api-rollout-advance"),
    path("rollouts/<int:rollout_id>/pause/", views.RolloutPauseView.as_view(), name="api-rollout-pause"),
    path("rollouts/<int:rollout_id>/resume/", views.RolloutResumeView.as_view(), name="api-rollout-resume"),
    path("rollouts/<int:rollout_id>/rollback/", views.RolloutRollbackView.as_view(), name="api-rollout-rollback"),
    path("rollouts/<int:rollout_id>/abort/", views.RolloutAbortView.as_view(), name="api-rollout-abort"),
    path("rollouts/<int:rollout_id>/promotion/", views.PromotionView.as_view(), name="api-rollout-promotion"),
    path(
        "rollouts/<int:rollout_id>/promotion/approve/",
        views.PromotionApproveView.as_view(),
        name="api-rollout-promotion-approve",
    ),
    path(
        "rollouts/<int:rollout_id>/promotion/reject/",
        views.PromotionRejectView.as_view(),
        name="api-rollout-promotion-reject",
    ),
    path("rollouts/<int:rollout_id>/assign/", views.AssignView.as_view(), name="api-rollout-assign"),
    path("rollouts/<int:rollout_id>/outcomes/", views.OutcomesView.as_view(), name="api-rollout-outcomes"),
    path("rollouts/<int:rollout_id>/gateway/", views.GatewayView.as_view(), name="api-rollout-gateway"),
    path("rollouts/<int:rollout_id>/predict/", views.PredictView.as_view(), name="api-rollout-predict"),
]
