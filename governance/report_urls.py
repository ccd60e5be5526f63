"""Report pages under /reports/."""

from __future__ import annotations

from django.urls import path

from governance.views import reports

app_name = "reports"
urlpatterns = [
    path("", reports.report_list, name="list"),
    path("new/", reports.report_new, name="new"),
    path("<uuid:report_id>/", reports.report_detail, name="detail"),
    path("<uuid:report_id>/render-status/", reports.report_render_status, name="render_status"),
    path("<uuid:report_id>/summary/", reports.report_summary_edit, name="summary"),
    path("<uuid:report_id>/subcategories/<str:sub_id>/", reports.report_subcategory_edit, name="subcategory"),
    path("<uuid:report_id>/refresh/", reports.report_refresh, name="refresh"),
    path("<uuid:report_id>/submit/", reports.report_submit, name="submit"),
    path("<uuid:report_id>/finalize/", reports.report_finalize, name="finalize"),
    path("<uuid:report_id>/render/", reports.report_render, name="render"),
    path("<uuid:report_id>/revise/", reports.report_revise, name="revise"),
    path("<uuid:report_id>/pdf/", reports.report_pdf, name="pdf"),
    path("<uuid:report_id>/json/", reports.report_json, name="json"),
]
