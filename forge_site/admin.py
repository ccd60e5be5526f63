"""Django admin for the shared kernel. The audit trail is read-only; admin edits are themselves audited."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db import models, transaction
from django.db.models import QuerySet
from django.forms.models import model_to_dict
from django.http import HttpRequest

from forge_site.audit import audit_record
from forge_site.auth import AdminLoginForm
from forge_site.jobs import job_cancel
from forge_site.models import ApiToken, AuditEvent, Job
from forge_site.tokens import token_revoke

# The admin's sign-in says when a lockout refused it (the lock itself is enforced by the authentication backend).
admin.site.login_form = AdminLoginForm


def _snapshot(obj: models.Model) -> dict[str, Any]:
    data = model_to_dict(obj)
    return {
        key: value if isinstance(value, str | int | float | bool | type(None)) else str(value)
        for key, value in data.items()
    }


class AuditedAdmin(admin.ModelAdmin):
    """Saves and deletes made in the admin go into the audit trail like any other change."""

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        before = _snapshot(type(obj).objects.get(pk=obj.pk)) if change and obj.pk else None
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            audit_record(
                actor=request.user,
                action="admin.change" if change else "admin.add",
                obj=obj,
                before=before,
                after=_snapshot(obj),
            )

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        before = _snapshot(obj)
        with transaction.atomic():
            audit_record(actor=request.user, action="admin.delete", obj=obj, before=before)
            super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        with transaction.atomic():
            for obj in queryset:
                audit_record(actor=request.user, action="admin.delete", obj=obj, before=_snapshot(obj))
            super().delete_queryset(request, queryset)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Evidence: visible to staff, changed by nobody."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("seq", "at", "actor_label", "action", "object_type", "object_id", "object_repr", "request_id")
    list_filter = ("action", "object_type")
    search_fields = ("actor_label", "action", "object_id", "object_repr", "request_id", "hash")
    date_hierarchy = "at"
    ordering = ("-seq",)
    list_select_related = False
    show_full_result_count = False


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "subject_label", "status", "progress", "device", "worker_host", "created_at")
    list_filter = ("status", "kind", "queue", "device")
    search_fields = ("id", "subject_label", "subject_id", "worker_host", "error")
    date_hierarchy = "created_at"
    actions = ["cancel_jobs"]
    readonly_fields = [field.name for field in Job._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # jobs are created by the services that need them

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a job row is the record of what ran

    @admin.action(description="Cancel the selected queued or running jobs")
    def cancel_jobs(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        cancelled = sum(1 for job in queryset if job_cancel(job=job, actor=request.user).status == "cancelled")
        self.message_user(request, f"{cancelled} job(s) cancelled.", messages.SUCCESS)


@admin.register(ApiToken)
class ApiTokenAdmin(AuditedAdmin):
    list_display = ("prefix", "user", "name", "created_at", "expires_at", "revoked_at", "last_used_at")
    list_filter = ("revoked_at",)
    search_fields = ("prefix", "name", "user__username")
    fields = ("user", "name", "prefix", "created_at", "expires_at", "revoked_at", "last_used_at")
    readonly_fields = ("user", "prefix", "created_at", "revoked_at", "last_used_at")
    actions = ["revoke_tokens"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a token's secret is shown once: create it with `manage.py forge_token`

    @admin.action(description="Revoke the selected tokens")
    def revoke_tokens(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        for token in queryset:
            token_revoke(token=token, actor=request.user)
        self.message_user(request, f"{queryset.count()} token(s) revoked.", messages.SUCCESS)
