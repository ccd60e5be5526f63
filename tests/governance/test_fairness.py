"""Fairness by segment on a labelled set whose rates are counted by hand in the test."""

from __future__ import annotations

import numpy as np
import pytest

from governance.drift.fairness import FairnessThresholds, decisions, fairness_report, merge_tallies, tally


@pytest.fixture(scope="module")
def labelled() -> tuple[list[str], np.ndarray, np.ndarray]:
    # Group A: 100 rows, 60 predicted positive; 50 actual positives of which 40 predicted positive,
    #          50 actual negatives of which 20 predicted positive.
    # Group B: 100 rows, 30 predicted positive; 50 actual positives of which 25 predicted positive,
    #          50 actual negatives of which 5 predicted positive.
    # Group C: 10 rows (too small), all predicted positive.
    segments, scores, labels = [], [], []
    for group, pos_hits, neg_hits, positives, negatives in (("A", 40, 20, 50, 50), ("B", 25, 5, 50, 50)):
        for i in range(positives):
            segments.append(group), labels.append(1), scores.append(0.9 if i < pos_hits else 0.1)
        for i in range(negatives):
            segments.append(group), labels.append(0), scores.append(0.7 if i < neg_hits else 0.2)
    for _ in range(10):
        segments.append("C"), labels.append(np.nan), scores.append(0.99)
    return segments, np.array(scores), np.array(labels, dtype=float)


def test_rates_and_gaps_match_the_hand_counts(labelled) -> None:
    segments, scores, labels = labelled
    report = fairness_report(tally(segments, decisions(scores), labels), attribute="group")
    rows = {s["segment"]: s for s in report["segments"]}
    assert rows["A"]["selection_rate"] == pytest.approx(60 / 100)
    assert rows["B"]["selection_rate"] == pytest.approx(30 / 100)
    assert rows["A"]["tpr"] == pytest.approx(40 / 50) and rows["A"]["fpr"] == pytest.approx(20 / 50)
    assert rows["B"]["tpr"] == pytest.approx(25 / 50) and rows["B"]["fpr"] == pytest.approx(5 / 50)
    assert report["demographic_parity_difference"] == pytest.approx(0.6 - 0.3)
    assert report["demographic_parity_ratio"] == pytest.approx(0.3 / 0.6)
    assert report["equalized_odds_gap"] == pytest.approx(max(0.8 - 0.5, 0.4 - 0.1))
    assert rows["C"]["judged"] is False and "too small to judge: 10 rows" in rows["C"]["note"]
    assert {b["metric"] for b in report["breaches"]} == {"demographic_parity_ratio", "equalized_odds_gap"}


def test_thresholds_are_configurable(labelled) -> None:
    segments, scores, labels = labelled
    tallies = tally(segments, decisions(scores), labels)
    lenient = fairness_report(tallies, FairnessThresholds(min_parity_ratio=0.5, max_equalized_odds_gap=0.35))
    assert lenient["breached"] is False
    tiny = fairness_report(tallies, FairnessThresholds(min_rows=5))
    assert next(s for s in tiny["segments"] if s["segment"] == "C")["judged"] is True
    assert tiny["demographic_parity_ratio"] == pytest.approx(0.3 / 1.0)
    with pytest.raises(ValueError, match="unknown fairness threshold"):
        FairnessThresholds.from_json({"min_ratio": 0.8})


def test_tallies_of_parts_add_up_to_the_whole(labelled) -> None:
    segments, scores, labels = labelled
    whole = tally(segments, decisions(scores), labels)
    half = len(segments) // 2
    parts = [
        tally(segments[:half], decisions(scores[:half]), labels[:half]),
        tally(segments[half:], decisions(scores[half:]), labels[half:]),
    ]
    merged = merge_tallies(parts)
    assert {k: v.tolist() for k, v in merged.items()} == {k: v.tolist() for k, v in whole.items()}


def test_unlabelled_rows_count_for_selection_rate_only() -> None:
    report = fairness_report(tally(["A"] * 40 + [None] * 40, np.array([True] * 20 + [False] * 60)))
    rows = {s["segment"]: s for s in report["segments"]}
    assert rows["A"]["selection_rate"] == 0.5 and rows["A"]["tpr"] is None
    assert "no labels yet" in rows["A"]["note"]
    assert rows["(missing)"]["selection_rate"] == 0.0 and report["demographic_parity_ratio"] == 0.0
