"""Every page works under the Content-Security-Policy, in a real Chromium, with no violation reported.

The policy allows only this origin and no inline script, inline style or eval. A page that still needed one would
report a `securitypolicyviolation` event (and a console error), and the part it blocked would be missing: plotly's
own styles, an htmx poll, Swagger UI's start-up. Each page is checked for the violations and for the part working.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User

from forge_site.models import JobStatus
from models_registry.services import model_create
from tests.api.helpers import mlp_version
from tests.conftest import PASSWORD
from tests.e2e.conftest import log_in
from tests.evidence_results import benchmark_result, evaluation_job, parity_result

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# Recorded from the first script of every document, before the page's own (Playwright's init scripts are not
# subject to the page's policy).
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(
    `${event.violatedDirective} blocked ${event.blockedURI || "inline"} at ${event.sourceFile}:${event.lineNumber}`
  );
});
"""


@pytest.fixture
def watched(page) -> dict[str, list[str]]:
    """The page, recording CSP violations (events and console messages) across navigations."""
    seen: dict[str, list[str]] = {"events": [], "console": []}
    page.context.add_init_script(RECORD_VIOLATIONS)

    def on_console(message: Any) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            seen["console"].append(message.text)

    page.on("console", on_console)
    return seen


def violations(page, seen: dict[str, list[str]]) -> list[str]:
    return [*page.evaluate("() => window.__cspViolations || []"), *seen["console"]]


def visit(page, url: str) -> Any:
    response = page.goto(url)
    assert response is not None and response.ok, f"{url}: {response.status if response else 'no response'}"
    policy = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in policy and "unsafe" not in policy, policy
    return response


@pytest.fixture
def evidence(engineer: User) -> dict[str, Any]:
    model = model_create(name="credit-risk", owner=engineer)
    old = mlp_version(model, engineer, "1.0.0")
    new = mlp_version(model, engineer, "1.1.0", onnx=True)
    jobs = {
        "parity": evaluation_job(new, "parity", result=parity_result(noise=1e-6), created_by=engineer),
        "bench_old": evaluation_job(old, "benchmark", result=benchmark_result(p50_ms={1: 0.5, 8: 0.9, 64: 4.0})),
        "bench_new": evaluation_job(new, "benchmark", result=benchmark_result(p50_ms={1: 0.4, 8: 0.7, 64: 3.1})),
        "queued": evaluation_job(new, "benchmark", status=JobStatus.QUEUED, created_by=engineer),
    }
    return {"model": model, "old": old, "new": new, "jobs": jobs}


def test_the_chart_pages_draw_their_plotly_charts_without_a_csp_violation(
    page, watched, live_server, engineer, evidence
):
    log_in(page, live_server, engineer)
    base = f"{live_server.url}/registry/models/credit-risk"
    jobs = evidence["jobs"]
    chart_pages = {
        "parity result": f"{base}/versions/1.1.0/runs/{jobs['parity'].pk}/",
        "benchmark result": f"{base}/versions/1.1.0/runs/{jobs['bench_new'].pk}/",
        "benchmark comparison": f"{base}/benchmarks/compare/?job={jobs['bench_old'].pk}&job={jobs['bench_new'].pk}",
    }
    for name, url in chart_pages.items():
        visit(page, url)
        page.locator(".js-plotly-plot .main-svg").first.wait_for()
        page.locator(".js-plotly-plot .modebar").first.wait_for(state="attached")
        # plotly's rules came from static/vendor/plotly.css, not from a <style> it injected.
        assert page.evaluate("() => document.querySelectorAll('style').length") == 0, name
        modebar_position = page.evaluate(
            "() => getComputedStyle(document.querySelector('.js-plotly-plot .modebar')).position"
        )
        assert modebar_position == "absolute", name
        page.locator(".js-plotly-plot").first.hover()  # hover labels and the modebar, drawn on demand
        assert violations(page, watched) == [], name


def test_htmx_polling_and_every_page_of_the_console_run_without_a_csp_violation(
    page, watched, live_server, engineer, evidence
):
    log_in(page, live_server, engineer)
    base = f"{live_server.url}/registry/models/credit-risk"
    queued = evidence["jobs"]["queued"]
    # A queued run's page polls itself every second through htmx: see two polls answered.
    visit(page, f"{base}/versions/1.1.0/runs/{queued.pk}/")
    for _ in range(2):
        with page.expect_response(lambda r: r.request.headers.get("hx-request") == "true" and r.ok):
            pass
    for url in [
        f"{live_server.url}/",
        f"{live_server.url}/registry/",
        f"{base}/",
        f"{base}/versions/1.1.0/",
        f"{base}/upload/",
        f"{live_server.url}/jobs/",
        f"{live_server.url}/jobs/{queued.pk}/",
        f"{live_server.url}/registry/create/",
    ]:
        visit(page, url)
        page.wait_for_load_state("networkidle")
        assert violations(page, watched) == [], url
    response = page.goto(f"{live_server.url}/registry/no-such-page/")
    assert response is not None and response.status == 404
    assert violations(page, watched) == []


def test_swagger_ui_renders_the_api_under_the_policy_and_links_back_to_forge(page, watched, live_server, engineer):
    log_in(page, live_server, engineer)
    visit(page, f"{live_server.url}/api/docs/")
    page.locator(".swagger-ui .opblock").first.wait_for()  # the start-up script ran and the schema was drawn
    page.locator(".swagger-ui .opblock-summary").first.click()  # an operation opens (icons, highlighting)
    page.wait_for_load_state("networkidle")
    assert violations(page, watched) == []
    page.click("#back-to-forge")
    page.wait_for_url(f"{live_server.url}/")


def test_the_admin_and_the_login_page_run_without_a_csp_violation(page, watched, live_server, engineer):
    staff = User.objects.create_superuser("root", "root@example.com", PASSWORD)
    visit(page, f"{live_server.url}/accounts/login/")
    assert violations(page, watched) == []
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", staff.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{live_server.url}/admin/")
    for url in ["/admin/", "/admin/auth/user/", f"/admin/auth/user/{engineer.pk}/change/", "/admin/auth/user/add/"]:
        visit(page, f"{live_server.url}{url}")
        page.wait_for_load_state("networkidle")
        assert violations(page, watched) == [], url
