"""Report API shapes: what a client sends and what it gets back (documented in the OpenAPI schema)."""

from __future__ import annotations

from rest_framework import serializers

from forge_site.api_inputs import StrictBooleanField, StrictCharField, StrictSerializer
from governance.models import ReportStatus
from governance.nist_rmf.mapping import Kind, Status


class PeriodInput(StrictSerializer):
    start = StrictCharField(help_text="a date (YYYY-MM-DD, from the start of that day) or an ISO 8601 datetime")
    end = StrictCharField(help_text="a date (YYYY-MM-DD, to the end of that day: inclusive) or a datetime")


class ReportCreateInput(StrictSerializer):
    model = StrictCharField(allow_null=True, help_text="the model's name, or null for the whole inventory")
    versions = serializers.ListField(
        child=StrictCharField(), required=False, default=list, help_text="omitted or empty: all versions"
    )
    period = PeriodInput()
    title = StrictCharField(required=False, allow_blank=True, max_length=200, default="")


class ReportUpdateInput(StrictSerializer):
    read_only_fields = ("id", "status", "model", "versions", "period", "signer", "snapshot_sha256", "coverage")
    title = StrictCharField(required=False, allow_blank=True, max_length=200)
    executive_summary = StrictCharField(required=False, allow_blank=True, trim_whitespace=False)


class SubcategoryUpdateInput(StrictSerializer):
    read_only_fields = ("id", "status", "reason", "evidence", "statement", "basis")
    attestation = StrictCharField(
        required=False, allow_blank=True, trim_whitespace=False, help_text="what a person attests; empty withdraws it"
    )
    narrative = StrictCharField(required=False, allow_blank=True, trim_whitespace=False)
    not_applicable = StrictBooleanField(required=False, help_text="true needs a justification")
    justification = StrictCharField(
        required=False, allow_blank=True, trim_whitespace=False, help_text="why the subcategory does not apply"
    )


class EvidenceRefOut(serializers.Serializer):
    type = serializers.CharField()
    id = serializers.CharField()
    path = serializers.CharField(help_text="where the record is in Forge")


class EvidenceItemOut(serializers.Serializer):
    id = serializers.CharField(help_text="the evidence's number in this report: E-001, E-002, …")
    kind = serializers.ChoiceField(choices=[k.value for k in Kind])
    key = serializers.CharField()
    title = serializers.CharField()
    summary = serializers.CharField()
    ok = serializers.BooleanField(allow_null=True, help_text="true supports, false counts against, null a record")
    at = serializers.CharField(allow_null=True)
    model = serializers.CharField()
    version = serializers.CharField()
    ref = EvidenceRefOut()
    values = serializers.JSONField(help_text="the record's figures, copied")


class AttestationOut(serializers.Serializer):
    text = serializers.CharField()
    by = serializers.CharField()
    at = serializers.CharField(allow_null=True)


class SubcategoryOut(serializers.Serializer):
    id = serializers.CharField(help_text='as NIST writes it: "GOVERN 1.1" (in URLs: GOVERN-1.1)')
    function = serializers.CharField()
    category = serializers.CharField()
    statement = serializers.CharField(help_text="NIST AI 100-1's statement of the outcome")
    status = serializers.ChoiceField(choices=[s.value for s in Status])
    reason = serializers.CharField(help_text="why, in words")
    basis = serializers.CharField(help_text="evidence, attestation, evidence and attestation, justification or none")
    evidence = EvidenceItemOut(many=True)
    attestation = AttestationOut(allow_null=True)
    narrative = serializers.CharField()
    not_applicable = serializers.BooleanField()
    justification = serializers.CharField()


class PeriodOut(serializers.Serializer):
    start = serializers.CharField()
    end = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]  # a field named like Field.label


class FunctionCoverageOut(serializers.Serializer):
    name = serializers.CharField()
    total = serializers.IntegerField()
    applicable = serializers.IntegerField()
    counts = serializers.DictField(child=serializers.IntegerField())
    met_share = serializers.FloatField(allow_null=True, help_text="met / applicable")


class OverallCoverageOut(FunctionCoverageOut):
    name = None  # type: ignore[assignment]
    gaps = serializers.IntegerField()


class CoverageOut(serializers.Serializer):
    functions = serializers.DictField(child=FunctionCoverageOut())
    overall = OverallCoverageOut()


class PdfOut(serializers.Serializer):
    paper = serializers.CharField()
    sha256 = serializers.CharField()
    size = serializers.IntegerField()
    pages = serializers.IntegerField()
    url = serializers.CharField()


class RenderJobOut(serializers.Serializer):
    id = serializers.CharField()
    status = serializers.CharField()
    progress = serializers.IntegerField()
    message = serializers.CharField()
    error = serializers.CharField()


class ReportSummaryOut(serializers.Serializer):
    id = serializers.CharField()
    title = serializers.CharField()
    status = serializers.ChoiceField(choices=ReportStatus.choices)
    model = serializers.CharField(allow_null=True, help_text="null: the whole inventory")
    versions = serializers.JSONField(help_text='"all", or the versions chosen')
    period = PeriodOut()
    revision = serializers.IntegerField()
    revision_of = serializers.CharField(allow_null=True)
    created_by = serializers.CharField()
    created_at = serializers.CharField()
    signer = serializers.CharField(help_text="who finalized it (empty until then)")
    finalized_at = serializers.CharField(allow_null=True)
    snapshot_sha256 = serializers.CharField(help_text="SHA-256 of the frozen snapshot (empty until finalized)")
    coverage = CoverageOut()


class ReportOut(ReportSummaryOut):
    executive_summary = serializers.CharField()
    evidence_collected_at = serializers.CharField(allow_null=True)
    subcategories = SubcategoryOut(many=True)
    evidence_kinds = serializers.JSONField(help_text="each kind of evidence: available, how many items, gaps")
    charts = serializers.JSONField(help_text="the charts' data, as the PDF draws them")
    pdfs = PdfOut(many=True)
    render_job = RenderJobOut(allow_null=True)


class SnapshotOut(serializers.Serializer):
    sha256 = serializers.CharField(help_text="SHA-256 of the snapshot's canonical JSON (sorted keys, no whitespace)")
    snapshot = serializers.JSONField()
