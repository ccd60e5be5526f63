"""NIST AI RMF reports: a draft an officer fills in, frozen into a hashed snapshot when it is finalized."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from forge_site.models import Job
from models_registry.models import ModelVersion, RegisteredModel


class ReportStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    IN_REVIEW = "in_review", "In review"
    FINALIZED = "finalized", "Finalized"


EDITABLE_REPORT_STATUSES = (ReportStatus.DRAFT, ReportStatus.IN_REVIEW)


class Report(models.Model):
    """One report against the NIST AI RMF 1.0 for a model (or the whole inventory, model null) and a period.

    While editable, `evidence` holds what the collectors found at `evidence_collected_at`; finalizing copies every
    value into `snapshot`, whose SHA-256 (over canonical JSON) is `snapshot_sha256`. A finalized report never
    changes: a revision is a new report whose `revision_of` points here.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    title = models.CharField(max_length=200, blank=True)
    model = models.ForeignKey(RegisteredModel, null=True, blank=True, on_delete=models.PROTECT, related_name="reports")
    versions = models.ManyToManyField(ModelVersion, blank=True, related_name="+", help_text="empty: all versions")
    period_start = models.DateTimeField(help_text="inclusive")
    period_end = models.DateTimeField(help_text="inclusive")
    status = models.CharField(max_length=16, choices=ReportStatus.choices, default=ReportStatus.DRAFT, db_index=True)
    executive_summary = models.TextField(blank=True)
    evidence = models.JSONField(default=dict, blank=True)
    evidence_collected_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    submitted_at = models.DateTimeField(null=True, blank=True)
    finalized_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    finalized_at = models.DateTimeField(null=True, blank=True)
    signer = models.CharField(max_length=150, blank=True, help_text="the signer's username at the time")
    snapshot = models.JSONField(null=True, blank=True)
    snapshot_sha256 = models.CharField(max_length=64, blank=True, db_index=True)
    render_job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    revision_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="revisions")
    revision = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=models.Q(period_start__lte=models.F("period_end")), name="report_period"),
            models.CheckConstraint(
                condition=~models.Q(status="finalized") | ~models.Q(snapshot_sha256=""),
                name="finalized_report_has_hash",
            ),
        ]

    def __str__(self) -> str:
        return f"report {str(self.pk)[:8]} ({self.scope_label})"

    @property
    def scope_label(self) -> str:
        return self.model.name if self.model_id and self.model else "whole inventory"

    @property
    def is_editable(self) -> bool:
        return self.status in EDITABLE_REPORT_STATUSES


class ReportSubcategory(models.Model):
    """What a person wrote for one subcategory of one report: attestation, narrative, not-applicable + why.

    Rows exist only for subcategories someone wrote about; the computed status and evidence are never stored here.
    """

    report = models.ForeignKey(Report, on_delete=models.CASCADE, related_name="entries")
    sub_id = models.CharField(max_length=16, help_text='as NIST writes it: "GOVERN 1.1"')
    attestation = models.TextField(blank=True)
    attested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    attested_at = models.DateTimeField(null=True, blank=True)
    narrative = models.TextField(blank=True)
    not_applicable = models.BooleanField(default=False)
    justification = models.TextField(blank=True, help_text="why the subcategory does not apply")
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["report", "sub_id"]
        constraints = [models.UniqueConstraint(fields=["report", "sub_id"], name="one_entry_per_subcategory")]

    def __str__(self) -> str:
        return f"{self.sub_id} of {self.report_id}"


class ReportPaper(models.TextChoices):
    A4 = "a4", "A4"
    LETTER = "letter", "US Letter"


class ReportPdf(models.Model):
    """A rendered PDF of a finalized report's snapshot, in artifact storage under its own SHA-256."""

    report = models.ForeignKey(Report, on_delete=models.PROTECT, related_name="pdfs")
    paper = models.CharField(max_length=8, choices=ReportPaper.choices)
    storage_name = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64)
    size = models.PositiveBigIntegerField()
    pages = models.PositiveIntegerField()
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    rendered_at = models.DateTimeField()

    class Meta:
        ordering = ["report", "paper"]
        constraints = [models.UniqueConstraint(fields=["report", "paper"], name="one_pdf_per_paper")]

    def __str__(self) -> str:
        return f"{self.paper} PDF of {self.report_id}"
