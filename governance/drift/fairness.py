"""Group fairness of a binary decision by segment: selection rate, parity, true/false positive rates.

Everything is computed from per-segment tallies (rows, predicted positive, labelled rows, actual positives, true
positives, false positives), which add exactly across windows and workers; `tally` builds them from raw rows.

- selection rate = predicted positive / rows (all rows, labelled or not);
- TPR = true positives / actual positives, FPR = false positives / actual negatives (labelled rows only);
- demographic parity difference = highest - lowest selection rate, ratio = lowest / highest (the four-fifths rule
  flags a ratio below 0.8); equalized-odds gap = max(TPR range, FPR range);
- a segment with fewer rows (or, for TPR/FPR, fewer actual positives or negatives) than `min_rows` is reported with
  a note and left out of the gaps, since a rate over a handful of rows says nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from governance.drift.columns import category_text

TALLY_FIELDS = ("rows", "predicted_positive", "labelled", "actual_positive", "true_positive", "false_positive")
MISSING_SEGMENT = "(missing)"


@dataclass(frozen=True)
class FairnessThresholds:
    """When a fairness result breaches: parity ratio below `min_parity_ratio` (four-fifths rule), parity difference
    above `max_parity_difference`, equalized-odds gap above `max_equalized_odds_gap`; segments under `min_rows`."""

    min_parity_ratio: float = 0.8
    max_parity_difference: float | None = None
    max_equalized_odds_gap: float | None = 0.1
    min_rows: int = 30

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> FairnessThresholds:
        if not data:
            return cls()
        allowed = set(cls.__dataclass_fields__)
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown fairness threshold(s): {', '.join(sorted(unknown))}")
        return cls(**data)


def decisions(predictions: np.ndarray, decision_threshold: float = 0.5) -> np.ndarray:
    """A prediction as a yes/no decision: booleans as they are, numbers at or above the threshold are positive."""
    array = np.asarray(predictions)
    if array.dtype.kind == "b":
        return array
    return np.asarray(array, dtype=np.float64) >= decision_threshold


def tally(
    segments: Iterable[object],
    predicted: np.ndarray,
    labels: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Per segment value: the six counts of TALLY_FIELDS. `predicted` holds decisions (bool); `labels` holds 1/0
    (or True/False) for labelled rows and NaN for rows without a label."""
    segment_text = _segment_texts(segments)
    decided = np.asarray(predicted, dtype=bool)
    label_values = np.full(len(decided), np.nan) if labels is None else np.asarray(labels, dtype=np.float64)
    labelled = ~np.isnan(label_values)
    positive = labelled & (label_values > 0.5)
    values, codes = np.unique(segment_text, return_inverse=True)
    size = len(values)
    measures = (
        np.ones(len(decided), dtype=bool),
        decided,
        labelled,
        positive,
        decided & positive,
        decided & labelled & ~positive,
    )
    counts = np.stack([np.bincount(codes, weights=m, minlength=size) for m in measures], axis=1).astype(np.int64)
    return {str(value): counts[index] for index, value in enumerate(values.tolist())}


def _segment_texts(segments: Iterable[object]) -> np.ndarray:
    """Segment values as a text array, missing ones as MISSING_SEGMENT (vectorised for text arrays)."""
    array = segments if isinstance(segments, np.ndarray) else np.asarray(list(segments), dtype=object)
    if array.dtype.kind == "U":
        return array
    if array.dtype.kind == "O":
        import pyarrow as pa
        import pyarrow.compute as pc

        try:
            arrow = pa.array(array, type=pa.string(), from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            arrow = None  # objects that are not all text (numbers): the general path below
        if arrow is not None:
            return np.asarray(pc.fill_null(arrow, MISSING_SEGMENT).to_numpy(zero_copy_only=False), dtype=str)
    return np.asarray([MISSING_SEGMENT if s is None or s != s else category_text(s) for s in array], dtype=str)


def merge_tallies(parts: Iterable[Mapping[str, Iterable[int]]]) -> dict[str, np.ndarray]:
    total: dict[str, np.ndarray] = {}
    for part in parts:
        for value, counts in part.items():
            array = np.asarray(list(counts), dtype=np.int64)
            total[value] = total[value] + array if value in total else array.copy()
    return total


def _rate(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def fairness_report(
    tallies: Mapping[str, Iterable[int]], thresholds: FairnessThresholds | None = None, *, attribute: str = ""
) -> dict[str, Any]:
    """Per-segment rates and the group gaps of one segment attribute, with breaches against the thresholds."""
    limits = thresholds or FairnessThresholds()
    segments = []
    for value in sorted(tallies):
        rows, predicted, labelled, actual_pos, tp, fp = (int(x) for x in tallies[value])
        actual_neg = labelled - actual_pos
        notes = []
        judged = rows >= limits.min_rows
        if not judged:
            notes.append(f"too small to judge: {rows} rows (at least {limits.min_rows} needed)")
        tpr_judged = actual_pos >= limits.min_rows
        fpr_judged = actual_neg >= limits.min_rows
        if judged and labelled and not (tpr_judged and fpr_judged):
            notes.append(
                f"too few labelled rows for TPR/FPR: {actual_pos} positives, {actual_neg} negatives "
                f"(at least {limits.min_rows} each needed)"
            )
        if judged and not labelled:
            notes.append("no labels yet: TPR and FPR unknown")
        segments.append(
            {
                "segment": value,
                "rows": rows,
                "labelled": labelled,
                "predicted_positive": predicted,
                "actual_positive": actual_pos,
                "selection_rate": _rate(predicted, rows),
                "tpr": _rate(tp, actual_pos),
                "fpr": _rate(fp, actual_neg),
                "judged": judged,
                "note": "; ".join(notes) or None,
                "_tpr_judged": judged and tpr_judged,
                "_fpr_judged": judged and fpr_judged,
            }
        )
    rates: list[float] = [s["selection_rate"] for s in segments if s["judged"]]  # type: ignore[misc]
    tprs: list[float] = [s["tpr"] for s in segments if s["_tpr_judged"]]  # type: ignore[misc]
    fprs: list[float] = [s["fpr"] for s in segments if s["_fpr_judged"]]  # type: ignore[misc]
    difference = max(rates) - min(rates) if len(rates) >= 2 else None
    ratio = None
    if len(rates) >= 2:
        ratio = min(rates) / max(rates) if max(rates) > 0 else 1.0
    tpr_gap = max(tprs) - min(tprs) if len(tprs) >= 2 else None
    fpr_gap = max(fprs) - min(fprs) if len(fprs) >= 2 else None
    gaps = [g for g in (tpr_gap, fpr_gap) if g is not None]
    odds_gap = max(gaps) if gaps else None
    breaches = []
    if ratio is not None and ratio < limits.min_parity_ratio:
        breaches.append({"metric": "demographic_parity_ratio", "value": ratio, "threshold": limits.min_parity_ratio})
    max_difference = limits.max_parity_difference
    if difference is not None and max_difference is not None and difference > max_difference:
        breaches.append(
            {"metric": "demographic_parity_difference", "value": difference, "threshold": limits.max_parity_difference}
        )
    if odds_gap is not None and limits.max_equalized_odds_gap is not None and odds_gap > limits.max_equalized_odds_gap:
        breaches.append({"metric": "equalized_odds_gap", "value": odds_gap, "threshold": limits.max_equalized_odds_gap})
    for segment in segments:
        del segment["_tpr_judged"], segment["_fpr_judged"]
    return {
        "attribute": attribute,
        "segments": segments,
        "demographic_parity_difference": difference,
        "demographic_parity_ratio": ratio,
        "tpr_gap": tpr_gap,
        "fpr_gap": fpr_gap,
        "equalized_odds_gap": odds_gap,
        "thresholds": {
            "min_parity_ratio": limits.min_parity_ratio,
            "max_parity_difference": limits.max_parity_difference,
            "max_equalized_odds_gap": limits.max_equalized_odds_gap,
            "min_rows": limits.min_rows,
        },
        "breaches": breaches,
        "breached": bool(breaches),
    }
