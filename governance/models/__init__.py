"""Governance records, one module per concern (reports here; monitoring and alerts arrive with their issue)."""

from governance.models.reports import Report, ReportPaper, ReportPdf, ReportStatus, ReportSubcategory

__all__ = ["Report", "ReportPaper", "ReportPdf", "ReportStatus", "ReportSubcategory"]
