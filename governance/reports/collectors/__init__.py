"""Evidence collectors, one per kind of evidence. A kind without a collector here (or whose feature this Forge does
not have yet) yields no evidence and is reported as "not recorded yet": adding evidence is adding a collector."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from governance.nist_rmf.mapping import Kind, KindEvidence
from governance.reports.collectors import alerts, audit, evaluation, monitoring, registry, rollouts
from governance.reports.scope import ReportScope


@dataclass(frozen=True)
class Collector:
    kind: Kind
    collect: Callable[[ReportScope], KindEvidence]
    available: Callable[[], bool] = lambda: True


COLLECTORS: tuple[Collector, ...] = (
    Collector(Kind.INVENTORY, registry.collect_inventory),
    Collector(Kind.LINEAGE, registry.collect_lineage),
    Collector(Kind.INSPECTION, registry.collect_inspection),
    Collector(Kind.PARITY, evaluation.collect_parity),
    Collector(Kind.BENCHMARK, evaluation.collect_benchmark),
    Collector(Kind.DRIFT, monitoring.collect_drift),
    Collector(Kind.FAIRNESS, monitoring.collect_fairness),
    Collector(Kind.ALERTS, alerts.collect_alerts),
    Collector(Kind.APPROVALS, audit.collect_approvals),
    Collector(Kind.ROLLOUTS, rollouts.collect_rollouts, rollouts.rollouts_recorded),
    Collector(Kind.ROLLBACKS, rollouts.collect_rollbacks, rollouts.rollouts_recorded),
    Collector(Kind.RETIREMENT, audit.collect_retirement, audit.retirement_recorded),
    Collector(Kind.AUDIT_TRAIL, audit.collect_audit_trail),
    Collector(Kind.AUDIT_CHAIN, audit.collect_audit_chain),
)


def collect_all(scope: ReportScope) -> dict[Kind, KindEvidence]:
    """Every kind of evidence, in Kind order: collected where this Forge records it, else marked unavailable."""
    found: dict[Kind, KindEvidence] = {}
    by_kind = {collector.kind: collector for collector in COLLECTORS}
    for kind in Kind:
        collector = by_kind.get(kind)
        if collector is None or not collector.available():
            found[kind] = KindEvidence(kind, available=False)
        else:
            found[kind] = collector.collect(scope)
    return found
