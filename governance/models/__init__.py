"""Governance records, one module per concern (reports, monitoring; alerts arrive beside them)."""

from governance.models.monitoring import (
    Baseline,
    BaselineStatus,
    InferenceBatch,
    InferenceLabel,
    Monitor,
    SketchWindow,
)
from governance.models.reports import Report, ReportPaper, ReportPdf, ReportStatus, ReportSubcategory

__all__ = [
    "Baseline",
    "BaselineStatus",
    "InferenceBatch",
    "InferenceLabel",
    "Monitor",
    "Report",
    "ReportPaper",
    "ReportPdf",
    "ReportStatus",
    "ReportSubcategory",
    "SketchWindow",
]
