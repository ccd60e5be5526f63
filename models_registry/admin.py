"""Django admin for the registry. Artifacts, hashes and alias history cannot be edited here."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from forge_site.admin import AuditedAdmin, ReadOnlyAdmin
from models_registry.models import AliasAssignment, ModelVersion, RegisteredModel, Tag


@admin.register(Tag)
class TagAdmin(AuditedAdmin):
    list_display = ("name",)
    search_fields = ("name",)


@admin.register(RegisteredModel)
class RegisteredModelAdmin(AuditedAdmin):
    list_display = ("name", "risk_tier", "owner", "version_count", "updated_at")
    list_filter = ("risk_tier", "tags")
    search_fields = ("name", "description")
    filter_horizontal = ("tags",)
    readonly_fields = ("name", "version_count", "latest_version", "created_at", "updated_at")
    list_select_related = ("owner",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # register models in the app or the API, which check names and audit the change

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ModelVersion)
class ModelVersionAdmin(AuditedAdmin):
    list_display = ("__str__", "status", "size", "created_by", "created_at")
    list_filter = ("status", "model__risk_tier")
    search_fields = ("model__name", "version", "sha256", "source_commit")
    list_select_related = ("model", "created_by")
    filter_horizontal = ("tags",)
    readonly_fields = (
        "model",
        "version",
        "status",
        "reason",
        "artifact",
        "sha256",
        "size",
        "original_filename",
        "onnx",
        "onnx_sha256",
        "onnx_size",
        "sample_inputs",
        "sample_inputs_sha256",
        "sample_inputs_size",
        "input_spec",
        "inspection",
        "parent",
        "created_by",
        "created_at",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a version comes only from an upload, which stores and inspects the artifact

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # versions are immutable evidence


@admin.register(AliasAssignment)
class AliasAssignmentAdmin(ReadOnlyAdmin):
    list_display = ("model", "alias", "version", "started_at", "ended_at", "assigned_by")
    list_filter = ("alias",)
    search_fields = ("model__name", "version__version", "reason")
    list_select_related = ("model", "version", "assigned_by")
