"""Report API under /api/v1/reports/."""

from django.urls import path

from governance.api import reports

urlpatterns = [
    path("reports/", reports.ReportListCreateView.as_view(), name="api-reports"),
    path("reports/<uuid:report_id>/", reports.ReportDetailView.as_view(), name="api-report"),
    path(
        "reports/<uuid:report_id>/subcategories/<str:sub_id>/",
        reports.ReportSubcategoryView.as_view(),
        name="api-report-subcategory",
    ),
    path("reports/<uuid:report_id>/submit/", reports.ReportSubmitView.as_view(), name="api-report-submit"),
    path("reports/<uuid:report_id>/refresh/", reports.ReportRefreshView.as_view(), name="api-report-refresh"),
    path("reports/<uuid:report_id>/finalize/", reports.ReportFinalizeView.as_view(), name="api-report-finalize"),
    path("reports/<uuid:report_id>/render/", reports.ReportRenderView.as_view(), name="api-report-render"),
    path("reports/<uuid:report_id>/revise/", reports.ReportReviseView.as_view(), name="api-report-revise"),
    path("reports/<uuid:report_id>/pdf/", reports.ReportPdfView.as_view(), name="api-report-pdf"),
    path("reports/<uuid:report_id>/json/", reports.ReportJsonView.as_view(), name="api-report-json"),
]
