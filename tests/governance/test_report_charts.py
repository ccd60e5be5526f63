"""The report's own SVG charts (pure): the stepped traffic line holds each share until the next change, and the drift
bars put every feature on one scale where 1 is its threshold."""

from __future__ import annotations

from governance.reports.chart_data import _drift_ratio
from governance.reports.charts import draw


def test_a_stepped_line_holds_each_share_until_the_next_change_and_to_its_end():
    chart = {
        "title": "traffic",
        "type": "steps_over_time",
        "data": {
            "series": [
                {
                    "name": "#1",
                    "points": [["2026-12-01T00:00:00Z", 5.0], ["2026-12-02T00:00:00Z", 25.0]],
                    "until": "2026-12-03T00:00:00Z",
                }
            ],
            "y_max": 100,
            "y_suffix": "%",
        },
    }
    svg = draw(chart)
    [line] = [s for s in svg.shapes if s["tag"] == "polyline"]
    corners = [tuple(float(v) for v in point.split(",")) for point in line["attrs"]["points"].split()]
    # start at 5%, hold to day 2, rise to 25%, hold to the end: four corners, two heights, x never going back
    assert len(corners) == 4
    assert corners[0][1] == corners[1][1] and corners[2][1] == corners[3][1] and corners[2][1] < corners[0][1]
    assert corners[1][0] == corners[2][0] and [c[0] for c in corners] == sorted(c[0] for c in corners)
    assert corners[0][0] == 60 and corners[3][0] == 620  # the first change at the left edge, the end at the right
    assert any(s["tag"] == "text" and s["text"] == "100%" for s in svg.shapes)


def test_drift_is_measured_against_each_features_own_threshold():
    assert _drift_ratio({"statistic": 0.2, "p_value": None, "threshold": 0.1}) == 2.0  # a distance: larger drifts
    assert _drift_ratio({"statistic": 3.1, "p_value": 0.01, "threshold": 0.05}) == 5.0  # a test: smaller p drifts
    assert _drift_ratio({"statistic": 0.1, "p_value": 0.0, "threshold": 0.05}) == 0.05 / 1e-12
    assert _drift_ratio({"statistic": None, "p_value": None, "threshold": 0.1}) is None
