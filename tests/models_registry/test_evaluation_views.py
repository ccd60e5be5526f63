"""Parity and benchmark pages: the version page's Evidence and forms, the run page, the benchmark comparison."""

from __future__ import annotations

import json
import re
from html import unescape
from html.parser import HTMLParser
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from forge_site.models import Job, JobStatus
from models_registry.models import ModelVersion, RegisteredModel
from models_registry.services import model_create
from models_registry.templatetags.evidence_format import pct, sig, times
from tests.api.helpers import mlp_version
from tests.evidence_results import benchmark_result, evaluation_job, parity_result
from tests.torchscript_models import GATED_SPEC

pytestmark = pytest.mark.django_db


@pytest.fixture
def model(engineer: User) -> RegisteredModel:
    return model_create(name="credit-risk", owner=engineer)


@pytest.fixture
def old(model: RegisteredModel, engineer: User) -> ModelVersion:
    return mlp_version(model, engineer, "1.0.0")


@pytest.fixture
def new(model: RegisteredModel, engineer: User, old: ModelVersion) -> ModelVersion:
    return mlp_version(model, engineer, "1.1.0", onnx=True)


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def version_url(mv: ModelVersion) -> str:
    return reverse("registry:version_detail", args=[mv.model.name, mv.version])


def run_url(job: Job, mv: ModelVersion) -> str:
    return reverse("registry:run_detail", args=[mv.model.name, mv.version, job.pk])


class Scripts(HTMLParser):
    """The page's <script> tags: their attributes and their text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[dict[str, Any]] = []
        self._open: dict[str, Any] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self._open = {**dict(attrs), "text": ""}
            self.tags.append(self._open)

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._open["text"] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._open = None


def scripts(html: str) -> list[dict[str, Any]]:
    parser = Scripts()
    parser.feed(html)
    return parser.tags


def chart_data(html: str) -> dict[str, dict[str, Any]]:
    """Each chart's figure, read back from its json_script block."""
    found = {}
    for tag in scripts(html):
        if tag.get("type") == "application/json" and tag.get("id", "").endswith("-data"):
            found[tag["id"].removesuffix("-data")] = json.loads(tag["text"])
    return found


def assert_no_inline_code(html: str) -> None:
    """Scripts are files from /static/ or JSON data; nothing comes from a CDN and no data is pasted into JS."""
    for tag in scripts(html):
        if tag.get("src"):
            assert tag["src"].startswith("/static/"), tag["src"]
        else:
            assert tag.get("type") == "application/json", tag


# --- version page ----------------------------------------------------------------------------------------------------


def test_the_version_page_lists_parity_and_benchmark_evidence(engineer, officer, old, new):
    passed = evaluation_job(new, "parity", result=parity_result(noise=1e-8), created_by=engineer)
    failed_tolerance = evaluation_job(
        new,
        "parity",
        result=parity_result(noise=1e-2),
        params={"reference": {"kind": "version", "version": "1.0.0"}, "samples": 256},
    )
    crashed = evaluation_job(
        new, "parity", status=JobStatus.FAILED, error="output has shape [64, 3], reference [64, 2]"
    )
    bench = evaluation_job(new, "benchmark", result=benchmark_result(p50_ms={1: 0.123, 64: 2.5}))
    html = logged_in(officer).get(version_url(new)).content.decode()
    evidence = html[html.index('id="evidence"') :]
    for job in (passed, failed_tolerance, crashed, bench):
        assert run_url(job, new) in evidence
    parity_rows = evidence[evidence.index('id="parity-runs"') : evidence.index('id="benchmark-runs"')]
    assert parity_rows.count("PASS") == 1 and parity_rows.count("FAIL") == 1
    assert (
        "ONNX companion" in parity_rows
        and reverse("registry:version_detail", args=["credit-risk", "1.0.0"]) in parity_rows
    )
    assert "output has shape [64, 3]" in parity_rows and engineer.username in parity_rows
    bench_rows = evidence[evidence.index('id="benchmark-runs"') :]
    assert f"<strong>{sig(0.123)}</strong> ms" in bench_rows and f"<strong>{sig(2.5)}</strong> ms" in bench_rows
    assert f'name="job" value="{bench.pk}"' in bench_rows  # a succeeded benchmark can be picked for comparison
    assert "hx-get" not in html[html.index('id="evidence"') : html.index('id="evidence"') + 300]  # nothing running


def test_engineers_get_the_run_forms_on_a_ready_version_and_nobody_else_does(engineer, manager, officer, new, model):
    html = logged_in(engineer).get(version_url(new)).content.decode()
    assert 'id="parity-form"' in html and 'id="benchmark-form"' in html
    assert reverse("registry:parity_start", args=["credit-risk", "1.1.0"]) in html
    for user in (manager, officer):
        html = logged_in(user).get(version_url(new)).content.decode()
        assert 'id="evidence"' in html and 'id="parity-form"' not in html and 'id="benchmark-form"' not in html
    validating = mlp_version(model, engineer, "2.0.0", ready=False)
    html = logged_in(engineer).get(version_url(validating)).content.decode()
    assert 'id="parity-form"' not in html and 'id="evidence"' not in html


def test_the_parity_form_offers_onnx_only_with_a_companion_and_the_other_ready_versions(engineer, model, old, new):
    mlp_version(model, engineer, "0.9.0", ready=False)
    html = logged_in(engineer).get(version_url(new)).content.decode()
    select = re.search(r'<select name="parity-reference".*?</select>', html, re.S)
    assert select is not None
    options = re.findall(r'<option value="([^"]+)"', select.group(0))
    assert options == ["onnx", "version:1.0.0", "device"]
    html = logged_in(engineer).get(version_url(old)).content.decode()
    select = re.search(r'<select name="parity-reference".*?</select>', html, re.S)
    assert select is not None
    assert re.findall(r'<option value="([^"]+)"', select.group(0)) == ["version:1.1.0", "device"]


def test_an_engineer_starts_a_parity_run_from_the_version_page(engineer, new):
    form = {
        "parity-reference": "onnx",
        "parity-reference_device": "cpu",
        "parity-reference_dtype": "float32",
        "parity-samples": "300",
        "parity-batch_size": "50",
        "parity-seed": "11",
        "parity-rtol": "",
        "parity-atol": "1e-4",
        "parity-device": "cpu",
        "parity-dtype": "float32",
    }
    response = logged_in(engineer).post(reverse("registry:parity_start", args=["credit-risk", "1.1.0"]), form)
    job = Job.objects.get(kind="parity")
    assert response.status_code == 302 and response["Location"] == run_url(job, new)
    assert job.created_by == engineer and job.subject_id == str(new.pk)
    params = job.params
    assert params["reference"]["kind"] == "onnx"
    assert (params["samples"], params["batch_size"], params["seed"], params["rtol"], params["atol"]) == (
        300,
        50,
        11,
        None,
        1e-4,
    )
    assert params["device"] == "cpu" and params["allow_fallback"] is False


def test_the_same_form_posted_twice_starts_one_run_and_both_posts_land_on_it(engineer, new):
    """A double click on Start: the form's one-time token makes the second post find the first post's run."""
    client = logged_in(engineer)
    page = client.get(version_url(new)).content.decode()
    tokens = re.findall(r'name="(parity|benchmark)-submission" value="([0-9a-f-]{36})"', page)
    assert [name for name, _ in tokens] == ["parity", "benchmark"] and tokens[0][1] != tokens[1][1]
    form = {
        "parity-submission": tokens[0][1],
        "parity-reference": "onnx",
        "parity-samples": "300",
        "parity-batch_size": "50",
        "parity-seed": "0",
        "parity-device": "cpu",
        "parity-dtype": "float32",
    }
    url = reverse("registry:parity_start", args=["credit-risk", "1.1.0"])
    first, second = client.post(url, form), client.post(url, form, follow=True)
    (job,) = Job.objects.filter(kind="parity")
    assert first["Location"] == run_url(job, new) and second.redirect_chain == [(run_url(job, new), 302)]
    assert "already started this run, so it was not started twice" in second.content.decode()
    changed = client.post(url, {**form, "parity-samples": "400"})  # Back, edit, Start: the token with other settings
    assert changed.status_code == 409
    assert "already started a run with other settings; reload the page to start another" in changed.content.decode()
    fresh = re.findall(
        r'name="parity-submission" value="([0-9a-f-]{36})"', client.get(version_url(new)).content.decode()
    )
    assert fresh and fresh[0] != tokens[0][1]
    assert client.post(url, {**form, "parity-submission": fresh[0]}).status_code == 302
    assert Job.objects.filter(kind="parity").count() == 2  # a reloaded page starts another run


def test_parity_against_another_device_sends_the_reference_device_and_dtype(engineer, new):
    form = {
        "parity-reference": "device",
        "parity-reference_device": "cuda",
        "parity-reference_dtype": "float16",
        "parity-samples": "64",
        "parity-batch_size": "64",
        "parity-seed": "0",
        "parity-device": "cpu",
        "parity-dtype": "float32",
        "parity-allow_fallback": "on",
    }
    logged_in(engineer).post(reverse("registry:parity_start", args=["credit-risk", "1.1.0"]), form)
    params = Job.objects.get(kind="parity").params
    assert params["reference"] == {"kind": "device", "device": "cuda", "dtype": "float16"}
    assert params["allow_fallback"] is True


def test_a_service_refusal_shows_on_the_field_it_concerns(engineer, model, new):
    mlp_version(model, engineer, "3.0.0", spec=GATED_SPEC)  # other inputs: parity against it is refused
    form = {
        "parity-reference": "version:3.0.0",
        "parity-samples": "64",
        "parity-batch_size": "64",
        "parity-seed": "0",
        "parity-device": "auto",
        "parity-dtype": "float32",
    }
    response = logged_in(engineer).post(reverse("registry:parity_start", args=["credit-risk", "1.1.0"]), form)
    assert response.status_code == 409  # the service's status: the stored versions conflict, the form is fine
    html = response.content.decode()
    error = re.search(r'data-error-for="reference" role="alert">(.*?)</ul>', html, re.S)
    assert error is not None and "parity needs the same inputs" in error.group(1)
    assert 'value="version:3.0.0" selected' in html  # the form keeps what was chosen
    assert not Job.objects.filter(kind="parity").exists()


def test_a_bad_benchmark_form_shows_its_error_and_starts_nothing(engineer, new):
    url = reverse("registry:benchmark_start", args=["credit-risk", "1.1.0"])
    form = {"benchmark-batch_sizes": "1, eight", "benchmark-device": "cpu", "benchmark-dtype": "float32"}
    form |= {"benchmark-warmup": "10", "benchmark-time_cap_s": "30"}
    response = logged_in(engineer).post(url, form)
    assert response.status_code == 400
    error = re.search(r'data-error-for="batch_sizes" role="alert">(.*?)</ul>', response.content.decode(), re.S)
    assert error is not None and "'eight' is not a batch size" in unescape(error.group(1))
    too_big = logged_in(engineer).post(url, form | {"benchmark-batch_sizes": "1, 100000"})
    assert too_big.status_code == 400
    assert "batch_sizes must be between 1 and 65,536" in too_big.content.decode()
    assert not Job.objects.filter(kind="benchmark").exists()
    ok = logged_in(engineer).post(url, form | {"benchmark-batch_sizes": "64 8 1", "benchmark-threads": "2"})
    job = Job.objects.get(kind="benchmark")
    assert ok["Location"] == run_url(job, new)
    assert job.params["batch_sizes"] == [1, 8, 64] and job.params["threads"] == 2


@pytest.mark.parametrize("role", ["manager", "officer"])
def test_other_roles_cannot_start_runs_from_the_page(request, role, new):
    client = logged_in(request.getfixturevalue(role))
    for name in ("registry:parity_start", "registry:benchmark_start"):
        assert client.post(reverse(name, args=["credit-risk", "1.1.0"]), {}).status_code == 403
    assert not Job.objects.filter(kind__in=["parity", "benchmark"]).exists()


def test_the_evidence_polls_while_a_run_is_active_and_stops_when_it_is_done(engineer, new):
    job = evaluation_job(new, "parity", status=JobStatus.RUNNING, progress=40, message="batch 4 of 10")
    partial_url = reverse("registry:version_evidence", args=["credit-risk", "1.1.0"])
    html = logged_in(engineer).get(version_url(new)).content.decode()
    assert f'hx-get="{partial_url}"' in html
    partial = logged_in(engineer).get(partial_url, HTTP_HX_REQUEST="true").content.decode()
    assert partial.lstrip().startswith('<section id="evidence"') and 'aria-valuenow="40"' in partial
    Job.objects.filter(pk=job.pk).update(status=JobStatus.SUCCEEDED, result=parity_result())
    partial = logged_in(engineer).get(partial_url, HTTP_HX_REQUEST="true").content.decode()
    assert "hx-get" not in partial and "PASS" in partial


def test_the_evidence_url_opened_directly_is_the_whole_version_page(engineer, new):
    """Without htmx (a bookmark, a reload) the partial alone rendered unstyled: it leads to the version page."""
    client = logged_in(engineer)
    partial_url = reverse("registry:version_evidence", args=["credit-risk", "1.1.0"])
    response = client.get(partial_url, follow=True)
    assert response.redirect_chain == [(f"{version_url(new)}#evidence-section", 302)]
    html = response.content.decode()
    assert html.lstrip().startswith("<!doctype html>") and "css/forge.css" in html and 'id="evidence"' in html
    assert "HX-Request" in client.get(partial_url)["Vary"]


def test_the_version_page_costs_the_same_queries_for_few_or_many_runs(engineer, new):
    client = logged_in(engineer)

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(version_url(new)).status_code == 200
        return len(ctx.captured_queries)

    evaluation_job(new, "parity", result=parity_result(), created_by=engineer)
    few = count()
    for _ in range(6):
        evaluation_job(new, "parity", result=parity_result(), created_by=engineer)
        evaluation_job(new, "benchmark", result=benchmark_result(p50_ms={1: 1.0}), created_by=engineer)
    assert count() == few


# --- run page --------------------------------------------------------------------------------------------------------


def test_a_running_run_shows_live_progress_and_a_cancel_button_to_engineers(engineer, officer, new):
    job = evaluation_job(new, "parity", status=JobStatus.RUNNING, progress=35, message="batch 6 of 16")
    url = run_url(job, new)
    html = logged_in(engineer).get(url).content.decode()
    live = html[html.index('id="run-live"') :]
    assert f'hx-get="{url}"' in live and 'aria-valuenow="35"' in live and "batch 6 of 16" in live
    assert reverse("jobs:cancel", args=[job.pk]) in live and f'name="next" value="{url}"' in live
    assert "plotly" not in html  # no chart yet, so no plotly
    assert reverse("jobs:cancel", args=[job.pk]) not in logged_in(officer).get(url).content.decode()
    partial = logged_in(engineer).get(url, HTTP_HX_REQUEST="true")
    assert partial.content.decode().lstrip().startswith('<section id="run-live"')
    assert "HX-Refresh" not in partial


def test_cancelling_from_the_run_page_comes_back_to_it(engineer, new):
    job = evaluation_job(new, "benchmark", status=JobStatus.QUEUED)
    url = run_url(job, new)
    response = logged_in(engineer).post(reverse("jobs:cancel", args=[job.pk]), {"next": url}, follow=True)
    assert response.redirect_chain == [(url, 302)]
    html = response.content.decode()
    assert "The run was cancelled." in html and 'id="run-live"' not in html


def test_the_polled_partial_asks_for_a_full_refresh_once_the_run_finished(engineer, new):
    job = evaluation_job(new, "parity", status=JobStatus.RUNNING)
    Job.objects.filter(pk=job.pk).update(status=JobStatus.SUCCEEDED, result=parity_result())
    response = logged_in(engineer).get(run_url(job, new), HTTP_HX_REQUEST="true")
    assert response["HX-Refresh"] == "true"
    assert "HX-Request" in response["Vary"]


def test_a_passed_parity_run_shows_its_figures_and_error_histogram(officer, new):
    result = parity_result(noise=1e-8, seed=5)
    job = evaluation_job(new, "parity", result=result)
    response = logged_in(officer).get(run_url(job, new))
    html = response.content.decode()
    assert 'id="parity-verdict" data-passed="true"' in html and ">PASS<" in html and result["summary"] in html
    output = result["outputs"][0]
    table = html[html.index('id="parity-outputs"') :]
    assert sig(output["max_abs_error"]) in table and sig(output["max_rel_error"]) in table
    assert pct(output["out_of_tolerance_share"]) in table and pct(output["argmax_agreement"], 4) in table
    assert f'<dd class="mono" id="parity-seed">{result["inputs"]["seed"]}</dd>' in html
    assert sig(result["tolerance"]["rtol"]) in html and result["candidate"]["sha256"] in html
    worst = output["worst_rows"][0]
    assert f'<td class="num mono nowrap">{worst["row"]}</td>' in html
    figures = chart_data(html)
    histogram = figures["parity-hist-0"]["data"][0]
    assert histogram["y"] == output["histogram"]["counts"] and len(histogram["x"]) == len(histogram["y"])
    assert '<div class="chart" id="parity-hist-0" data-chart="parity-hist-0-data"' in html
    assert '<script src="/static/vendor/plotly.min.js">' in html and '<script src="/static/js/charts.js">' in html
    assert_no_inline_code(html)


def test_a_parity_run_out_of_tolerance_says_fail(engineer, new):
    result = parity_result(noise=1e-2)
    job = evaluation_job(new, "parity", result=result)
    html = logged_in(engineer).get(run_url(job, new)).content.decode()
    assert 'data-passed="false"' in html and ">FAIL<" in html and result["summary"] in html
    assert result["outputs"][0]["out_of_tolerance"] > 0
    assert f'{result["outputs"][0]["out_of_tolerance"]} <span class="faint">' in html


@pytest.mark.parametrize(
    ("status", "error", "message", "words"),
    [
        (JobStatus.FAILED, "output has shape [64, 3], the reference [64, 2]", "failed", "The run failed."),
        (JobStatus.TIMED_OUT, "The run did not finish within its 60 s limit", "timed out", "stopped at its time limit"),
        (JobStatus.CANCELLED, "", "cancelled after batch 3 of 16", "The run was cancelled."),
    ],
)
def test_a_run_that_did_not_succeed_says_why_in_words(engineer, new, status, error, message, words):
    job = evaluation_job(new, "parity", status=status, error=error, message=message)
    html = logged_in(engineer).get(run_url(job, new)).content.decode()
    alert = html[html.index('id="run-error"') :]
    assert words in alert and (error or message.capitalize()) in alert
    assert 'id="run-live"' not in html and "plotly" not in html


def test_a_benchmark_run_shows_its_table_fingerprint_and_charts(manager, new):
    result = benchmark_result(p50_ms={1: 0.2, 8: 0.9, 64: 6.0}, threads=4)
    result["results"][2]["stable"] = False
    job = evaluation_job(new, "benchmark", result=result)
    html = logged_in(manager).get(run_url(job, new)).content.decode()
    table = html[html.index('id="benchmark-table"') : html.index("</table>", html.index('id="benchmark-table"'))]
    for row in result["results"]:
        assert f'<td class="num mono">{row["batch_size"]}</td>' in table
        assert sig(row["latency_ms"]["p99"]) in table and sig(row["throughput_sps"], 4) in table
    assert table.count("not stable") == 1
    assert "governance-overhead" not in html  # measured on the serving path (rollouts), not by the registry
    assert result["fingerprint"]["cpu_model"] in html and result["fingerprint_key"] in html
    figures = chart_data(html)
    assert figures["bench-latency"]["data"][0]["y"] == [row["latency_ms"]["p50"] for row in result["results"]]
    assert figures["bench-throughput"]["data"][0]["y"] == [row["throughput_sps"] for row in result["results"]]
    assert_no_inline_code(html)


def test_the_run_page_belongs_to_its_version(engineer, old, new):
    job = evaluation_job(new, "parity", result=parity_result())
    assert logged_in(engineer).get(run_url(job, old)).status_code == 404
    inspect = Job.objects.get(kind="inspect", subject_id=str(new.pk))
    response = logged_in(engineer).get(run_url(inspect, new))
    assert response.status_code == 302 and response["Location"] == reverse("jobs:detail", args=[inspect.pk])


# --- comparison ------------------------------------------------------------------------------------------------------


def test_the_compare_page_lists_the_models_succeeded_benchmarks_to_pick(engineer, old, new):
    first = evaluation_job(old, "benchmark", result=benchmark_result(p50_ms={1: 0.5}))
    second = evaluation_job(new, "benchmark", result=benchmark_result(p50_ms={1: 0.4}))
    failed = evaluation_job(new, "benchmark", status=JobStatus.FAILED, error="boom")
    url = reverse("registry:benchmark_compare", args=["credit-risk"])
    html = logged_in(engineer).get(url).content.decode()
    picker = html[html.index('id="compare-picker"') :]
    assert f'value="{first.pk}"' in picker and f'value="{second.pk}"' in picker and str(failed.pk) not in picker
    assert 'id="compare-table"' not in html and "plotly" not in html
    one = logged_in(engineer).get(url, {"job": str(second.pk)}).content.decode()
    assert "Pick at least one more run" in one and f'value="{second.pk}" id="pick-{second.pk}" checked' in one


def test_it_compares_runs_side_by_side_with_ratios_and_charts(officer, old, new):
    base = evaluation_job(old, "benchmark", result=benchmark_result(p50_ms={1: 0.5, 64: 4.0}))
    faster = evaluation_job(new, "benchmark", result=benchmark_result(p50_ms={1: 0.25, 64: 5.0}))
    url = reverse("registry:benchmark_compare", args=["credit-risk"])
    response = logged_in(officer).get(url, {"job": [str(base.pk), str(faster.pk)]})
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="hardware-warning"' not in html
    table = html[html.index('id="compare-table"') :]
    assert times(0.25 / 0.5) in table and times(5.0 / 4.0) in table  # p50 ratios
    assert times(0.5 / 0.25) in table and times(4.0 / 5.0) in table  # throughput ratios
    figures = chart_data(html)
    assert [line["y"] for line in figures["compare-latency"]["data"]] == [[0.5, 4.0], [0.25, 5.0]]
    assert len(figures["compare-throughput"]["data"]) == 2
    runs = html[html.index('id="compared-runs"') :]
    assert run_url(base, old) in runs and run_url(faster, new) in runs
    assert_no_inline_code(html)


def test_it_warns_when_the_runs_come_from_different_hardware(engineer, old, new):
    cpu = evaluation_job(old, "benchmark", result=benchmark_result(p50_ms={1: 0.5}, key="1111222233334444"))
    gpu = evaluation_job(
        new,
        "benchmark",
        result=benchmark_result(p50_ms={1: 0.1}, device="cuda", key="5555666677778888", gpu="NVIDIA H100"),
    )
    url = reverse("registry:benchmark_compare", args=["credit-risk"])
    html = logged_in(engineer).get(url, {"job": [str(cpu.pk), str(gpu.pk)]}).content.decode()
    warning = html[html.index('id="hardware-warning"') :]
    assert "different hardware" in warning and "NVIDIA H100" in warning


def test_a_bad_comparison_request_says_what_is_wrong(engineer, new):
    run = evaluation_job(new, "benchmark", result=benchmark_result(p50_ms={1: 0.5}))
    parity = evaluation_job(new, "parity", result=parity_result())
    url = reverse("registry:benchmark_compare", args=["credit-risk"])
    response = logged_in(engineer).get(url, {"job": [str(run.pk), str(parity.pk)]})
    assert response.status_code == 400
    html = response.content.decode()
    assert f"Job {parity.pk} is not a succeeded benchmark run of credit-risk" in html
    assert 'id="compare-picker"' in html
    assert logged_in(engineer).get(url, {"job": "nonsense"}).status_code == 400


def test_model_and_version_pages_link_to_the_comparison(engineer, new):
    url = reverse("registry:benchmark_compare", args=["credit-risk"])
    assert url in logged_in(engineer).get(version_url(new)).content.decode()
    assert url in logged_in(engineer).get(reverse("registry:model_detail", args=["credit-risk"])).content.decode()


def test_a_cancelled_benchmark_shows_what_it_measured_before_it_stopped(engineer, new):
    full = benchmark_result(p50_ms={1: 0.2, 8: 0.9})
    partial = {"kind": "benchmark", "device": "cpu", "dtype": "float32", "results": full["results"][:1]}
    job = evaluation_job(
        new, "benchmark", status=JobStatus.CANCELLED, message="cancelled at batch size 8", result=partial
    )
    response = logged_in(engineer).get(run_url(job, new))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Cancelled at batch size 8." in html and "What it had measured before it stopped is below." in html
    table = html[html.index('id="benchmark-table"') : html.index("</table>", html.index('id="benchmark-table"'))]
    assert table.count('<td class="num mono">1</td>') == 1 and '<td class="num mono">8</td>' not in table


class _FormDefaults(HTMLParser):
    """The values a browser would post for the parity form as the page renders it, untouched."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}
        self.select: str | None = None
        self.first_option: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        name = a.get("name") or ""
        if tag == "input" and name.startswith("parity-"):
            if a.get("type") == "checkbox":
                if "checked" in a:
                    self.values[name] = "on"
            else:
                self.values[name] = a.get("value") or ""
        elif tag == "select" and name.startswith("parity-"):
            self.select, self.first_option = name, None
        elif tag == "option" and self.select:
            value = a.get("value") or ""
            if self.first_option is None:
                self.first_option = value
                self.values[self.select] = value
            if "selected" in a:
                self.values[self.select] = value

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self.select = None


def test_the_parity_form_posted_as_it_renders_starts_a_run_that_can_prove_something(engineer, model):
    """A version with no ONNX companion and no other version: the only reference is the same artifact, and the
    defaults must not pick the candidate's own device and dtype (a run that fails once queued, as it proves
    nothing)."""
    only = mlp_version(model, engineer, "1.0.0")
    page = logged_in(engineer).get(version_url(only)).content.decode()
    defaults = _FormDefaults()
    defaults.feed(page)
    assert defaults.values["parity-reference"] == "device"
    response = logged_in(engineer).post(
        reverse("registry:parity_start", args=["credit-risk", "1.0.0"]), defaults.values
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    params = Job.objects.get(kind="parity").params
    assert params["reference"] == {"kind": "device", "device": "cpu", "dtype": "float64"}
    assert (params["device"], params["dtype"]) == ("auto", "float32")


def test_a_reference_that_repeats_the_candidate_is_refused_on_the_form_before_queuing(engineer, model):
    only = mlp_version(model, engineer, "1.0.0")
    page = logged_in(engineer).get(version_url(only)).content.decode()
    defaults = _FormDefaults()
    defaults.feed(page)
    same = {**defaults.values, "parity-reference_dtype": "float32"}  # auto float32 against cpu float32
    response = logged_in(engineer).post(reverse("registry:parity_start", args=["credit-risk", "1.0.0"]), same)
    assert response.status_code == 422
    assert "the same computation twice proves nothing" in response.content.decode()
    assert not Job.objects.filter(kind="parity").exists()


def test_a_benchmark_title_names_the_device_it_ran_on_not_auto(engineer, new):
    """Asked for "auto", run on the worker's CPU: the title says cpu (it said "on auto float32")."""
    job = evaluation_job(
        new,
        "benchmark",
        params={"batch_sizes": [1], "device": "auto", "dtype": "float32"},
        result=benchmark_result(p50_ms={1: 0.5}, device="cpu"),
    )
    html = logged_in(engineer).get(run_url(job, new)).content.decode()
    h1 = re.search(r"<h1>(.*?)</h1>", html, re.S)
    assert h1 is not None and " on cpu float32" in unescape(h1.group(1)) and "auto" not in h1.group(1)
    queued = evaluation_job(new, "benchmark", status=JobStatus.QUEUED, params={"device": "auto", "dtype": "float16"})
    h1 = re.search(r"<h1>(.*?)</h1>", logged_in(engineer).get(run_url(queued, new)).content.decode(), re.S)
    assert h1 is not None and " on auto float16" in h1.group(1)  # not run yet: what was asked for
