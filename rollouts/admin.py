"""Django admin for rollouts: read-only, except promotion policies. Decisions are made in the console or the API,
whose services enforce four eyes; the table's check constraint refuses a self-approval from any other path too."""

from __future__ import annotations

from django.contrib import admin

from forge_site.admin import AuditedAdmin, ReadOnlyAdmin
from rollouts.models import ArmMinute, Outcome, PromotionPolicy, PromotionRequest, Rollout


@admin.register(Rollout)
class RolloutAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "state", "challenger_share", "advance_mode", "created_by", "created_at")
    list_filter = ("state", "advance_mode")
    search_fields = ("model__name",)
    list_select_related = ("model", "champion", "challenger", "created_by")


@admin.register(PromotionRequest)
class PromotionRequestAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "status", "requested_by", "requested_at", "decided_by", "decided_at")
    list_filter = ("status",)
    list_select_related = ("rollout", "requested_by", "decided_by")


@admin.register(PromotionPolicy)
class PromotionPolicyAdmin(AuditedAdmin):
    list_display = ("model", "require_parity", "benchmark_p95_budget", "require_no_open_drift_alert", "min_samples")
    list_select_related = ("model",)


@admin.register(ArmMinute)
class ArmMinuteAdmin(ReadOnlyAdmin):
    list_display = ("rollout", "arm", "minute", "writer", "requests", "assignments", "errors")
    list_filter = ("arm",)


@admin.register(Outcome)
class OutcomeAdmin(ReadOnlyAdmin):
    list_display = ("request_id", "rollout", "arm", "success", "value", "received_at")
    list_filter = ("arm",)
