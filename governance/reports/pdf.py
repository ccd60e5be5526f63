"""The report as a PDF: the print template rendered by WeasyPrint, in A4 or US Letter, from a finalized snapshot.

Reproducible: the same snapshot renders to the same bytes. The PDF's dates are the snapshot's finalization time
(not the render time), fonts are the DejaVu files named in the template, and nothing random enters the document.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.template.loader import render_to_string

from governance.reports.present import present

PAPER_SIZES = {"a4": "A4", "letter": "letter"}


@dataclass(frozen=True)
class RenderedPdf:
    data: bytes
    pages: int


def report_html(snapshot: dict[str, Any], sha256: str, paper: str) -> str:
    """The print HTML (also what a test or a person can open to see what the PDF is made of)."""
    if paper not in PAPER_SIZES:
        raise ValueError(f"paper must be one of {', '.join(PAPER_SIZES)}")
    context = present(snapshot) | {
        "sha256": sha256,
        "paper": PAPER_SIZES[paper],
        "font_dir": settings.FORGE_REPORT_FONT_DIR,
        "pinned_time": (snapshot.get("signoff") or {}).get("finalized_at") or snapshot["report"]["created_at"],
    }
    return render_to_string("reports/pdf/report.html", context)


def render_pdf(snapshot: dict[str, Any], sha256: str, paper: str) -> RenderedPdf:
    import weasyprint  # imported here: it costs ~0.5 s and only the render job needs it

    document = weasyprint.HTML(string=report_html(snapshot, sha256, paper), base_url=str(settings.BASE_DIR)).render()
    return RenderedPdf(data=document.write_pdf(), pages=len(document.pages))
