"""The plotly specs of the benchmark charts: which latency axis a run's figures get."""

from __future__ import annotations

from models_registry.evidence import benchmark_charts, compare_charts


def run_result(p50s: list[float]) -> dict:
    return {
        "results": [
            {"batch_size": 8**i, "latency_ms": {"p50": p50, "p95": p50 * 1.2, "p99": p50 * 1.5}, "throughput_sps": 1.0}
            for i, p50 in enumerate(p50s)
        ]
    }


def latency_axis(result: dict) -> dict:
    (latency, _) = benchmark_charts(result)
    return latency["spec"]["layout"]["yaxis"]


def test_figures_within_a_factor_of_ten_get_a_linear_axis_from_zero():
    axis = latency_axis(run_result([1.0, 2.0, 6.0]))
    assert axis.get("type") is None and axis["rangemode"] == "tozero"


def test_a_narrow_log_axis_is_labelled_at_1_2_and_5_of_each_power_of_ten():
    """0.024 to 0.401 ms (the p99 of the last row): one label per power of ten would have labelled 0.1 alone."""
    axis = latency_axis(run_result([0.024, 0.031, 0.064, 0.224]))
    assert axis["type"] == "log" and "dtick" not in axis
    assert axis["ticktext"] == ["0.01", "0.02", "0.05", "0.1", "0.2", "0.5", "1", "2", "5"]
    assert axis["tickvals"] == [float(text) for text in axis["ticktext"]]
    shown = [tick for tick in axis["tickvals"] if 0.024 <= tick <= 0.224 * 1.5]
    assert shown == [0.05, 0.1, 0.2]


def test_a_wide_log_axis_is_labelled_once_per_power_of_ten():
    axis = latency_axis(run_result([0.001, 0.1, 10.0]))  # 0.001 to 15 ms
    assert axis["type"] == "log" and axis["dtick"] == 1 and "tickvals" not in axis


def test_the_comparison_chart_uses_the_same_axis_rule():
    comparison = {"batch_sizes": [1, 64], "series": [{"label": "a", "p50_ms": [0.02, 0.3], "throughput_sps": [1, 2]}]}
    (latency, _) = compare_charts(comparison)
    assert latency["spec"]["layout"]["yaxis"]["ticktext"][:3] == ["0.01", "0.02", "0.05"]


def test_each_compared_run_is_one_line_through_its_own_batch_sizes():
    comparison = {
        "batch_sizes": [1, 8, 16],
        "series": [
            {"label": "a", "p50_ms": [0.02, 0.03, None], "throughput_sps": [1, 2, None]},
            {"label": "b", "p50_ms": [0.02, None, 0.04], "throughput_sps": [1, None, 3]},
        ],
    }
    for chart in compare_charts(comparison):
        assert [line["connectgaps"] for line in chart["spec"]["data"]] == [True, True]
