"""A report's content arranged for reading: gaps first, then function by function; shared by the page and the PDF."""

from __future__ import annotations

from typing import Any

from governance.nist_rmf.catalog import catalog
from governance.nist_rmf.mapping import GAP_ORDER, GAPS
from governance.reports.charts import draw

COVERAGE_CHART = "chart-coverage"  # shown with the executive summary, not again among the figures
EVIDENCE_ROWS_PER_SUBCATEGORY = 4  # the rest are in the evidence register, cited by their E- numbers
EXTRACT_NOTE = "The trail has {total:,} events in the period; the extract shows the first and last {ends} of them."


def first_sentence(text: str, limit: int = 140) -> str:
    """The reason's first sentence, for the gaps table (the subcategory's section has it whole)."""
    head = text.split(". ", 1)[0].rstrip(".") + "."
    return head if len(head) <= limit else head[: limit - 1].rstrip() + "…"


def id_ranges(ids: list[str]) -> str:
    """E-007, E-008, E-009, E-012 -> 'E-007 to E-009, E-012' (register numbers are consecutive per kind)."""
    numbers = sorted(int(i.split("-")[1]) for i in ids if i.startswith("E-"))
    runs: list[list[int]] = []
    for n in numbers:
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return ", ".join(f"E-{a:03d}" if a == b else f"E-{a:03d} to E-{b:03d}" for a, b in runs)


def compact_ids(sub_ids: list[str]) -> str:
    """['MAP 2.3', 'MAP 4.1', 'MANAGE 3.2'] -> 'MAP 2.3, 4.1; MANAGE 3.2'."""
    groups: dict[str, list[str]] = {}
    for sub_id in sub_ids:
        function, number = sub_id.split(" ")
        groups.setdefault(function, []).append(number)
    return "; ".join(f"{function} {', '.join(numbers)}" for function, numbers in groups.items())


def present(content: dict[str, Any]) -> dict[str, Any]:
    subs = content["subcategories"]
    order = {sub.id: index for index, sub in enumerate(catalog().subcategories)}
    by_id = {}
    for sub in subs:
        evidence = sub["evidence"]
        # one row beyond the limit is shown rather than cited as "and 1 more"
        limit = len(evidence) if len(evidence) <= EVIDENCE_ROWS_PER_SUBCATEGORY + 1 else EVIDENCE_ROWS_PER_SUBCATEGORY
        by_id[sub["id"]] = {
            **sub,
            "evidence_shown": evidence[:limit],
            "evidence_more": len(evidence) - limit,
            "evidence_more_ids": id_ranges([item["id"] for item in evidence[limit:]]),
            "is_gap": sub["status"] in GAPS,
            "reason_short": first_sentence(sub["reason"]),
        }
    coverage = content["coverage"]
    functions = []
    for function in catalog().functions:
        functions.append(
            {
                "id": function.id,
                "name": function.name,
                "statement": function.statement,
                "coverage": coverage["functions"][function.id],
                "categories": [
                    {
                        "id": category.id,
                        "statement": category.statement,
                        "subcategories": [by_id[sub.id] for sub in category.subcategories],
                    }
                    for category in function.categories
                ],
            }
        )
    gaps = sorted(
        (s for s in by_id.values() if s["is_gap"]), key=lambda s: (GAP_ORDER.index(s["status"]), order[s["id"]])
    )
    register: dict[str, Any] = {}
    for sub in subs:
        for item in sub["evidence"]:
            register.setdefault(item["id"], {**item, "cited_by": []})["cited_by"].append(sub["id"])
    for entry in register.values():
        entry["cited_by_text"] = compact_ids(entry["cited_by"])
    charts = [
        {"spec": chart, "svg": draw(chart), "number": number} for number, chart in enumerate(content["charts"], start=1)
    ]
    trail = content["appendix"]["audit_trail"]
    extract_note = ""
    if trail.get("total") and not trail.get("extract_complete", True):
        extract_note = EXTRACT_NOTE.format(total=trail["total"], ends=len(trail["extract"]) // 2)
    return {
        "content": content,
        "report": content["report"],
        "functions": functions,
        "gaps": gaps,
        "register": [register[key] for key in sorted(register)],
        "charts": charts,
        "coverage_chart": next((c for c in charts if c["spec"]["id"] == COVERAGE_CHART), None),
        "figures": [c for c in charts if c["spec"]["id"] != COVERAGE_CHART],
        "coverage": coverage,
        "appendix": content["appendix"],
        "audit_actions": sorted(trail.get("by_action", {}).items(), key=lambda kv: (-kv[1], kv[0])),
        "audit_actors": sorted(trail.get("by_actor", {}).items(), key=lambda kv: (-kv[1], kv[0]))[:20],
        "extract_note": extract_note,
        "signoff": content.get("signoff"),
    }
