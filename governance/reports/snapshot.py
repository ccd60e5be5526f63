"""A report's content as one JSON document: what the page shows, what the PDF prints, what finalizing freezes.

`build_content` assembles it from the collected evidence and what people wrote; finalizing adds the sign-off and
hashes the canonical JSON (sorted keys, no whitespace, UTF-8) with SHA-256. The same document renders the browser
preview and the PDF, so both always show the same content.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime, time, timedelta
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

from governance.nist_rmf.catalog import catalog
from governance.nist_rmf.mapping import GAPS, KIND_LABELS, STATUS_LABELS, Kind, KindEvidence, Status, assess
from governance.reports import chart_data
from governance.reports.collectors.base import iso

SCHEMA = "forge.nist-ai-rmf-report/1"


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, cls=DjangoJSONEncoder).encode()


def snapshot_sha256(snapshot: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(snapshot)).hexdigest()


def plain(value: Any) -> Any:
    return json.loads(canonical_json(value))


# --- evidence as stored on a draft --------------------------------------------------------------------------------


def evidence_to_json(found: Mapping[Kind, KindEvidence], collected_at: datetime) -> dict[str, Any]:
    """Label every item E-001, E-002, … in kind order, so a page, the PDF and an auditor cite the same item."""
    kinds: dict[str, Any] = {}
    number = 0
    for kind in Kind:
        evidence = found.get(kind, KindEvidence(kind, available=False))
        items = []
        for item in evidence.items:
            number += 1
            items.append({"id": f"E-{number:03d}", **item})
        kinds[str(kind)] = {"available": evidence.available, "gaps": list(evidence.gaps), "items": items}
    return plain({"collected_at": iso(collected_at), "kinds": kinds})


def evidence_from_json(data: Mapping[str, Any]) -> dict[Kind, KindEvidence]:
    kinds = (data or {}).get("kinds") or {}
    found = {}
    for kind in Kind:
        raw = kinds.get(str(kind))
        if raw is None:
            found[kind] = KindEvidence(kind, available=False)
        else:
            found[kind] = KindEvidence(kind, tuple(raw["items"]), tuple(raw["gaps"]), bool(raw["available"]))
    return found


# --- the period ---------------------------------------------------------------------------------------------------


def period_label(start: datetime, end: datetime) -> str:
    """'2026-01-01 to 2026-03-31' for whole days (as dates were given), else the instants in UTC."""
    whole_days = start.time() == time.min and (end + timedelta(microseconds=1)).time() == time.min
    if whole_days:
        return f"{start:%Y-%m-%d} to {end:%Y-%m-%d}"
    return f"{start:%Y-%m-%d %H:%M:%S} to {end:%Y-%m-%d %H:%M:%S} UTC"


# --- the content --------------------------------------------------------------------------------------------------


def _entry_fields(entry: Any) -> dict[str, Any]:
    if entry is None:
        return {"attestation": None, "narrative": "", "not_applicable": False, "justification": ""}
    attestation = None
    if entry.attestation.strip():
        attestation = {
            "text": entry.attestation,
            "by": entry.attested_by.get_username() if entry.attested_by else "",
            "at": iso(entry.attested_at),
        }
    return {
        "attestation": attestation,
        "narrative": entry.narrative,
        "not_applicable": entry.not_applicable,
        "justification": entry.justification,
    }


def subcategory_content(sub_id: str, found: Mapping[Kind, KindEvidence], entry: Any) -> dict[str, Any]:
    sub = catalog().subcategory(sub_id)
    fields = _entry_fields(entry)
    attestation = fields["attestation"] or {}
    result = assess(
        sub.id,
        found,
        attestation=attestation.get("text", ""),
        attested_by=attestation.get("by", ""),
        not_applicable=fields["not_applicable"],
        justification=fields["justification"],
    )
    return {
        "id": sub.id,
        "slug": sub.slug,
        "function": sub.function_id,
        "category": sub.category_id,
        "statement": sub.statement,
        "status": str(result.status),
        "status_label": STATUS_LABELS[result.status],
        "reason": result.reason,
        "basis": result.basis,
        "evidence": list(result.evidence),
        **fields,
    }


def coverage(subcategories: list[dict[str, Any]]) -> dict[str, Any]:
    """Per function and overall: how many subcategories are in each status, and the share met of those that apply."""
    functions: dict[str, Any] = {}
    for function in catalog().functions:
        subs = [s for s in subcategories if s["function"] == function.id]
        counts = {str(status): sum(1 for s in subs if s["status"] == status) for status in Status}
        applicable = len(subs) - counts[Status.NOT_APPLICABLE]
        functions[function.id] = {
            "name": function.name,
            "total": len(subs),
            "applicable": applicable,
            "counts": counts,
            "met_share": round(counts[Status.MET] / applicable, 4) if applicable else None,
        }
    counts = {str(status): sum(1 for s in subcategories if s["status"] == status) for status in Status}
    applicable = len(subcategories) - counts[Status.NOT_APPLICABLE]
    overall = {
        "total": len(subcategories),
        "applicable": applicable,
        "counts": counts,
        "met_share": round(counts[Status.MET] / applicable, 4) if applicable else None,
        "gaps": sum(1 for s in subcategories if s["status"] in GAPS),
    }
    return {"functions": functions, "overall": overall}


def build_content(*, report: Any, entries: Mapping[str, Any], evidence: Mapping[str, Any]) -> dict[str, Any]:
    """The report as a JSON document (for a draft: as of its evidence collection; finalizing freezes it)."""
    found = evidence_from_json(evidence)
    cat = catalog()
    subcategories = [subcategory_content(sub.id, found, entries.get(sub.id)) for sub in cat.subcategories]
    versions = [
        {"model": v.model.name, "version": v.version, "sha256": v.sha256}
        for v in report.versions.select_related("model").order_by("model__name", "created_at")
    ]
    return plain(
        {
            "schema": SCHEMA,
            "report": {
                "id": str(report.pk),
                "title": report.title or default_title(report),
                "model": report.model.name if report.model_id else None,
                "scope": report.scope_label,
                "versions": versions or "all",
                "period": {
                    "start": iso(report.period_start),
                    "end": iso(report.period_end),
                    "label": period_label(report.period_start, report.period_end),
                },
                "status": report.status,
                "revision": report.revision,
                "revision_of": str(report.revision_of_id) if report.revision_of_id else None,
                "created_by": report.created_by.get_username() if report.created_by else "",
                "created_at": iso(report.created_at),
            },
            "framework": {"id": cat.id, "title": cat.title, "source": cat.source},
            "evidence_collected_at": (evidence or {}).get("collected_at"),
            "executive_summary": report.executive_summary,
            "coverage": coverage(subcategories),
            "subcategories": subcategories,
            "evidence_kinds": [
                {
                    "kind": str(kind),
                    "label": KIND_LABELS[kind],
                    "available": found[kind].available,
                    "items": len(found[kind].items),
                    "gaps": list(found[kind].gaps),
                }
                for kind in Kind
            ],
            "charts": chart_data.charts_for(found, subcategories),
            "appendix": appendix(found),
        }
    )


def default_title(report: Any) -> str:
    return f"NIST AI RMF 1.0 report: {report.scope_label}"


def appendix(found: Mapping[Kind, KindEvidence]) -> dict[str, Any]:
    """Artifact hashes, the audit-trail extract and the audit-chain verification, copied from the evidence."""
    artifacts = [
        {
            key: item["values"].get(key)
            for key in ("model", "version", "sha256", "size", "onnx_sha256", "sample_inputs_sha256", "status")
        }
        | {"evidence": item.get("id")}
        for item in found[Kind.LINEAGE].items
    ]
    trail = next(iter(found[Kind.AUDIT_TRAIL].items), None)
    chain = next(iter(found[Kind.AUDIT_CHAIN].items), None)
    return {
        "artifacts": artifacts,
        "audit_trail": (trail or {}).get("values") or {"total": 0, "by_action": {}, "extract": []},
        "audit_trail_evidence": (trail or {}).get("id"),
        "audit_chain": (chain or {}).get("values"),
        "audit_chain_evidence": (chain or {}).get("id"),
    }
