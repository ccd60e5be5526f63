"""Which kinds of Forge evidence bear on which NIST AI RMF 1.0 subcategory, and the status that evidence supports.

Every subcategory the records cannot show is "attestation required": Forge never claims it as met on its own. Where
records show part of an outcome, the rule says what they show (`shows`) and what a person must still attest
(`attest`); such a subcategory is at most "partially met" until someone attests. Pure: no Django.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from governance.nist_rmf.catalog import catalog


class Status(StrEnum):
    MET = "met"
    PARTIALLY_MET = "partially_met"
    NOT_MET = "not_met"
    NOT_APPLICABLE = "not_applicable"
    ATTESTATION_REQUIRED = "attestation_required"


STATUS_LABELS = {
    Status.MET: "Met",
    Status.PARTIALLY_MET: "Partially met",
    Status.NOT_MET: "Not met",
    Status.NOT_APPLICABLE: "Not applicable",
    Status.ATTESTATION_REQUIRED: "Attestation required",
}
# Gaps first: the order a compliance officer works through them.
GAP_ORDER = (Status.NOT_MET, Status.ATTESTATION_REQUIRED, Status.PARTIALLY_MET)
GAPS = frozenset(GAP_ORDER)


class Kind(StrEnum):
    """Kinds of evidence, one collector each (governance/reports/collectors/)."""

    INVENTORY = "inventory"
    LINEAGE = "lineage"
    INSPECTION = "inspection"
    PARITY = "parity"
    BENCHMARK = "benchmark"
    DRIFT = "drift"
    FAIRNESS = "fairness"
    ALERTS = "alerts"
    APPROVALS = "approvals"
    ROLLOUTS = "rollouts"
    ROLLBACKS = "rollbacks"
    RETIREMENT = "retirement"
    AUDIT_TRAIL = "audit_trail"
    AUDIT_CHAIN = "audit_chain"


KIND_LABELS = {
    Kind.INVENTORY: "inventory record",
    Kind.LINEAGE: "lineage and artifact hashes",
    Kind.INSPECTION: "artifact inspection",
    Kind.PARITY: "parity runs",
    Kind.BENCHMARK: "benchmark runs",
    Kind.DRIFT: "drift monitoring",
    Kind.FAIRNESS: "fairness evaluations",
    Kind.ALERTS: "alerts",
    Kind.APPROVALS: "approvals and alias moves",
    Kind.ROLLOUTS: "rollouts",
    Kind.ROLLBACKS: "rollbacks",
    Kind.RETIREMENT: "retirements",
    Kind.AUDIT_TRAIL: "audit trail",
    Kind.AUDIT_CHAIN: "audit-chain verification",
}


@dataclass(frozen=True)
class Rule:
    """How records bear on one subcategory."""

    kinds: tuple[Kind, ...]
    shows: str  # what the records can show, completing "The records show …"
    attest: str = ""  # what only a person can attest; "" when the records can show the outcome whole
    all_kinds: bool = False  # every kind must have evidence (else any one will do)
    # No records of these kinds in the period: NOT_MET where the outcome needs them (no parity run at all),
    # ATTESTATION_REQUIRED where their absence is no failure (no incident happened, nothing was retired).
    when_none: Status = Status.NOT_MET


K = Kind
RULES: dict[str, Rule] = {
    "GOVERN 1.6": Rule(
        (K.INVENTORY,),
        "the AI system in Forge's inventory with an owner and a risk tier",
        "the inventory is resourced according to organizational risk priorities",
    ),
    "GOVERN 1.7": Rule(
        (K.RETIREMENT,),
        "models or versions retired with a recorded reason",
        "decommissioning processes are in place and do not increase risk",
        when_none=Status.ATTESTATION_REQUIRED,
    ),
    "GOVERN 2.1": Rule(
        (K.APPROVALS,),
        "who requested, approved and carried out each change to what runs in production",
        "roles, responsibilities and lines of communication are documented and clear across the organization",
        when_none=Status.ATTESTATION_REQUIRED,
    ),
    "GOVERN 2.3": Rule(
        (K.APPROVALS,),
        "named managers taking the decisions to promote or roll back",
        "executive leadership takes responsibility for these decisions",
        when_none=Status.ATTESTATION_REQUIRED,
    ),
    "GOVERN 4.2": Rule(
        (K.INVENTORY,),
        "the intended use, description and risk tier the team recorded for the system",
        "the team documents the risks and potential impacts and communicates them more broadly",
    ),
    "GOVERN 4.3": Rule(
        (K.PARITY, K.BENCHMARK, K.ALERTS),
        "testing (parity, benchmarks) and incident identification (alerts) in practice",
        "organizational practices enable testing, incident identification and information sharing",
    ),
    "MAP 1.1": Rule(
        (K.INVENTORY,),
        "the intended use recorded for the system",
        "purposes, context-specific laws and norms, deployment settings and users are understood and documented",
    ),
    "MAP 2.1": Rule(
        (K.INVENTORY, K.INSPECTION),
        "the system's description and its inspected interface (methods, inputs, outputs)",
        "the tasks and methods the system supports are defined",
    ),
    "MAP 2.3": Rule(
        (K.LINEAGE,),
        "the training-data reference and source commit of each version",
        "scientific integrity and TEVV considerations (experimental design, data selection) are documented",
    ),
    "MAP 3.3": Rule(
        (K.INVENTORY,),
        "the intended use and risk tier (categorization) recorded for the system",
        "the targeted application scope is specified from the system's capability and context",
    ),
    "MAP 3.5": Rule(
        (K.APPROVALS,),
        "human approval of changes to what serves production",
        "processes for human oversight are defined and assessed per the GOVERN policies",
        when_none=Status.ATTESTATION_REQUIRED,
    ),
    "MAP 4.1": Rule(
        (K.LINEAGE,),
        "each version's components: artifact, companions, parent version, training data, with their hashes",
        "technology and legal risks of the components, third-party ones included, are mapped",
    ),
    "MAP 4.2": Rule(
        (K.INSPECTION, K.LINEAGE),
        "the controls Forge applies to each component (content hashes, archive and pickle checks in a sandbox)",
        "internal risk controls for all components, third-party ones included, are identified",
    ),
    "MEASURE 1.1": Rule(
        (K.PARITY, K.BENCHMARK),
        "the metrics applied to the system (parity tolerances, latency and throughput)",
        "the approaches were chosen for the most significant risks, and unmeasured risks are documented",
    ),
    "MEASURE 1.3": Rule(
        (K.APPROVALS,),
        "promotion decisions taken by people other than the engineers who asked for them",
        "independent assessors or internal experts take part in regular assessments",
        when_none=Status.ATTESTATION_REQUIRED,
    ),
    "MEASURE 2.1": Rule(
        (K.PARITY, K.BENCHMARK),
        "the inputs, seeds, tolerances, metrics and tool versions of every test run",
    ),
    "MEASURE 2.3": Rule(
        (K.BENCHMARK, K.PARITY),
        "performance measured on the deployment runtime (benchmarks) and agreement across runtimes (parity)",
        "the measured conditions are similar to the deployment setting",
    ),
    "MEASURE 2.4": Rule((K.DRIFT, K.ALERTS), "the system's inputs and outputs monitored in production (drift)"),
    "MEASURE 2.5": Rule(
        (K.PARITY, K.BENCHMARK),
        "validity across runtimes (parity) and stable performance (benchmarks)",
        "limitations of generalizability beyond the development conditions are documented",
        all_kinds=True,
    ),
    "MEASURE 2.6": Rule(
        (K.ROLLBACKS, K.ROLLOUTS),
        "guarded rollouts and rollbacks that took the system out of service when it misbehaved",
        "the system is evaluated for safety risks and can fail safely",
        when_none=Status.ATTESTATION_REQUIRED,
    ),
    "MEASURE 2.7": Rule(
        (K.INSPECTION,),
        "each artifact checked before use: archive structure, pickle allow-list, sandboxed load",
        "security and resilience beyond the artifact (access, infrastructure, adversarial robustness) are evaluated",
    ),
    "MEASURE 2.8": Rule(
        (K.AUDIT_CHAIN, K.AUDIT_TRAIL),
        "an append-only, hash-chained audit trail of every change, verified intact",
        all_kinds=True,
    ),
    "MEASURE 2.11": Rule((K.FAIRNESS,), "fairness and bias evaluated across segments, with the results recorded"),
    "MEASURE 2.12": Rule(
        (K.BENCHMARK,),
        "the compute the system uses in operation (device, throughput, memory)",
        "environmental impact and sustainability of training and management are assessed",
    ),
    "MEASURE 3.1": Rule(
        (K.DRIFT, K.ALERTS),
        "risks tracked over time in the deployed context (drift and alerts)",
        "approaches, personnel and documentation are in place to identify emergent risks",
    ),
    "MANAGE 1.1": Rule(
        (K.APPROVALS,),
        "recorded go/no-go decisions on what serves production, with who took them and why",
    ),
    "MANAGE 2.2": Rule(
        (K.DRIFT, K.ROLLOUTS),
        "mechanisms that keep the deployed system's value in view (monitoring, staged rollouts)",
        "those mechanisms are applied to sustain the value of the deployed system",
    ),
    "MANAGE 2.3": Rule(
        (K.ALERTS, K.ROLLBACKS),
        "responses to risks as they appeared (alerts raised and resolved, rollbacks)",
        "procedures to respond to and recover from previously unknown risks are followed",
        when_none=Status.ATTESTATION_REQUIRED,
    ),
    "MANAGE 2.4": Rule(
        (K.ROLLBACKS, K.RETIREMENT, K.APPROVALS),
        "versions superseded, rolled back or retired, with who did it and why",
        "responsibilities to supersede, disengage or deactivate the system are assigned and understood",
        when_none=Status.ATTESTATION_REQUIRED,
    ),
    "MANAGE 3.2": Rule(
        (K.LINEAGE,),
        "each version's parent (the pre-trained or earlier model it derives from)",
        "pre-trained models used for development are monitored as part of regular maintenance",
    ),
    "MANAGE 4.1": Rule(
        (K.DRIFT, K.ALERTS, K.ROLLBACKS, K.RETIREMENT, K.APPROVALS),
        "post-deployment monitoring, overrides, rollbacks, decommissioning and change approvals in practice",
        "monitoring plans, with user input, appeal, incident response and recovery, are implemented",
    ),
    "MANAGE 4.3": Rule(
        (K.ALERTS,),
        "alert rules watching the system, and the incidents they raised, delivered and resolved",
        "incidents and errors are communicated to relevant AI actors, affected communities included",
        when_none=Status.ATTESTATION_REQUIRED,
    ),
}


@dataclass(frozen=True)
class KindEvidence:
    """What one collector found: items (each with ok True / False / None for informational) and gaps in words."""

    kind: Kind
    items: tuple[Mapping[str, Any], ...] = ()
    gaps: tuple[str, ...] = ()
    available: bool = True  # False: this Forge does not record this kind of evidence (yet)


@dataclass(frozen=True)
class Assessment:
    status: Status
    reason: str
    basis: str  # "evidence", "attestation", "evidence and attestation", "justification" or "none"
    evidence: tuple[Mapping[str, Any], ...] = field(default=())


def _kinds_text(kinds: tuple[Kind, ...] | list[Kind]) -> str:
    labels = [KIND_LABELS[kind] for kind in kinds]
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " or " + labels[-1]


def _item_text(items: list[Mapping[str, Any]], limit: int = 3) -> str:
    shown = "; ".join(str(item.get("summary") or item.get("title")) for item in items[:limit])
    more = len(items) - limit
    return shown + (f"; and {more} more" if more > 0 else "")


def _cited(items: list[Mapping[str, Any]], limit: int = 8) -> str:
    """Evidence by its register number (E-004, E-007, …); by summary where an item has no number yet."""
    if not all(item.get("id") for item in items):
        return _item_text(items)
    ids = sorted({str(item["id"]) for item in items})
    return ", ".join(ids[:limit]) + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def assess(
    sub_id: str,
    evidence: Mapping[Kind, KindEvidence],
    *,
    attestation: str = "",
    attested_by: str = "",
    not_applicable: bool = False,
    justification: str = "",
) -> Assessment:
    """The status of one subcategory from the evidence collected and what a person wrote, with the reason in words."""
    catalog().subcategory(sub_id)  # KeyError for an ID the framework does not have
    rule = RULES.get(sub_id)
    items = [item for kind in (rule.kinds if rule else ()) if kind in evidence for item in evidence[kind].items]
    attested = bool(attestation.strip())
    who = f" by {attested_by}" if attested_by else ""
    if not_applicable:
        return Assessment(
            Status.NOT_APPLICABLE, f"Marked not applicable{who}: {justification.strip()}", "justification", tuple(items)
        )
    if rule is None:
        if attested:
            return Assessment(Status.MET, f"Attested{who}. No Forge record bears on this outcome.", "attestation", ())
        return Assessment(
            Status.ATTESTATION_REQUIRED,
            "No Forge record can show this outcome; a person must attest to it.",
            "none",
            (),
        )
    available = [kind for kind in rule.kinds if kind in evidence and evidence[kind].available]
    if not available:
        reason = f"Forge does not record {_kinds_text(rule.kinds)} yet, so no record can show this outcome here."
        if attested:
            return Assessment(Status.MET, f"Attested{who}. {reason}", "attestation", ())
        return Assessment(Status.ATTESTATION_REQUIRED, reason + " A person must attest to it.", "none", ())

    gaps = [gap for kind in available for gap in evidence[kind].gaps]
    failing = [item for item in items if item.get("ok") is False]
    passing = [item for item in items if item.get("ok") is not False]
    missing = [kind for kind in available if not evidence[kind].items] if rule.all_kinds else []

    if not items:
        text = f"No evidence in the period: no {_kinds_text(available)} for this report's scope."
        if rule.when_none == Status.ATTESTATION_REQUIRED:
            if attested:
                return Assessment(Status.MET, f"Attested{who}. {text}", "attestation", ())
            return Assessment(Status.ATTESTATION_REQUIRED, text + " A person must attest to it.", "none", ())
        if attested:
            return Assessment(
                Status.PARTIALLY_MET, f"Attested{who}, but {text[0].lower()}{text[1:]}", "attestation", ()
            )
        return Assessment(Status.NOT_MET, text, "none", ())
    if failing and not passing:
        return Assessment(Status.NOT_MET, f"The evidence fails: {_item_text(failing)}.", "evidence", tuple(items))
    basis = "evidence and attestation" if attested else "evidence"
    shortfalls = []
    if failing:
        shortfalls.append(f"some evidence fails ({_item_text(failing)})")
    if missing:
        shortfalls.append(f"there are no {_kinds_text(missing)}")
    if gaps:
        shortfalls.append(_item_text([{"summary": gap} for gap in gaps]))
    shown = f"The records show {rule.shows} ({_cited(passing)})."
    if shortfalls:
        return Assessment(Status.PARTIALLY_MET, f"{shown} But {'; '.join(shortfalls)}.", basis, tuple(items))
    if rule.attest and not attested:
        return Assessment(
            Status.PARTIALLY_MET,
            f"{shown} A person must attest that {rule.attest}.",
            "evidence",
            tuple(items),
        )
    if rule.attest:
        return Assessment(Status.MET, f"{shown} Attested{who} that {rule.attest}.", basis, tuple(items))
    return Assessment(Status.MET, shown, basis, tuple(items))


def evidence_kinds_for(sub_id: str) -> tuple[Kind, ...]:
    rule = RULES.get(sub_id)
    return rule.kinds if rule else ()
