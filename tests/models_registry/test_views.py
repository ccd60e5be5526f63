"""Registry pages through the Django test client: roles, forms, uploads, downloads, query counts."""

from __future__ import annotations

import functools
import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from forge_site.models import AuditEvent, Job
from models_registry.artifacts import HashedUploadedFile
from models_registry.models import AliasAssignment, ModelVersion, RegisteredModel, Tag, VersionStatus
from models_registry.services import alias_set, model_create, version_create, version_record_inspection
from tests.conftest import PASSWORD, make_user
from tests.torchscript_models import MLP_SPEC
from tests.torchscript_models import mlp_bytes as _mlp_bytes

pytestmark = pytest.mark.django_db

XHR = {"HTTP_X_REQUESTED_WITH": "XMLHttpRequest", "HTTP_ACCEPT": "application/json"}
INSPECTION = {
    "parameters": 2242,
    "parameter_tensors": 4,
    "buffers": 0,
    "buffer_tensors": 0,
    "parameter_dtypes": ["float32"],
    "file_size": 100,
    "format_version": 1,
    "saved_with_torch": "2.13.0",
    "loaded_with_torch": "2.13.0",
    "methods": ["forward"],
    "forward_schema": "forward(__torch__.CreditMLP self, Tensor x) -> Tensor",
    "forward_args": [{"name": "x", "type": "Tensor", "has_default": False}],
    "operators": ["aten::linear", "aten::relu"],
    "archive": {"entries": 21, "uncompressed_bytes": 15000, "code_files": 3, "globals": []},
    "load_seconds": 0.01,
    "dry_run": {
        "source": "input_spec",
        "inputs": [{"shape": [2, 32], "dtype": "float32"}],
        "outputs": [
            {"path": "output[0]", "shape": [2, 2], "dtype": "float32", "finite": True},
            {"path": "output[1]", "type": "int", "value": 3},
        ],
        "seconds": 0.002,
    },
    "inspect_seconds": 0.5,
}


@functools.cache
def mlp_bytes(seed: int = 0) -> bytes:
    return _mlp_bytes(seed)


def temp_upload(data: bytes, name: str = "model.pt") -> HashedUploadedFile:
    file = HashedUploadedFile(name, "application/octet-stream", len(data), None, None)
    file.write(data)
    file.seek(0)
    file.size = len(data)
    return file


def login(client: Client, user: User) -> Client:
    assert client.login(username=user.username, password=PASSWORD)
    return client


@pytest.fixture
def model(engineer: User) -> RegisteredModel:
    return model_create(
        name="credit-risk", owner=engineer, risk_tier="high", tags=["credit", "retail"], description="Default risk"
    )


@pytest.fixture
def artifact_bytes() -> bytes:
    return mlp_bytes(0)


@pytest.fixture
def version(model: RegisteredModel, engineer: User, artifact_bytes: bytes) -> ModelVersion:
    return version_create(
        model=model,
        version="1.0.0",
        artifact=temp_upload(artifact_bytes),
        input_spec=MLP_SPEC,
        created_by=engineer,
        source_commit="abc1234",
        training_data="s3://data/credit",
        metrics={"auc": 0.91},
        tags=["baseline"],
    )


@pytest.fixture
def ready_version(version: ModelVersion) -> ModelVersion:
    return version_record_inspection(version_id=version.pk, ok=True, inspection=INSPECTION, reason="")


def page_urls(version: ModelVersion) -> dict[str, str]:
    name, ver = version.model.name, version.version
    return {
        "list": reverse("registry:model_list"),
        "panel": reverse("registry:dashboard_panel"),
        "model": reverse("registry:model_detail", args=[name]),
        "version": reverse("registry:version_detail", args=[name, ver]),
        "create": reverse("registry:model_create"),
        "edit": reverse("registry:model_edit", args=[name]),
        "upload": reverse("registry:version_upload", args=[name]),
        "download": reverse("registry:version_download", args=[name, ver, "artifact"]),
    }


# which page each role may open (GET)
ALLOWED = {
    "engineer": {"list", "panel", "model", "version", "create", "edit", "upload", "download"},
    "manager": {"list", "panel", "model", "version"},
    "officer": {"list", "panel", "model", "version", "download"},
}


@pytest.mark.parametrize("role", ["engineer", "manager", "officer"])
def test_each_page_answers_200_to_allowed_roles_and_403_to_the_others(client, role, request, version):
    user = request.getfixturevalue(role)
    login(client, user)
    for page, url in page_urls(version).items():
        response = client.get(url)
        expected = 200 if page in ALLOWED[role] else 403
        assert response.status_code == expected, (role, page, response.status_code)


def test_it_sends_anonymous_visitors_to_the_login_page(client, version):
    for url in page_urls(version).values():
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login") + "?next=")


def test_a_user_without_a_role_gets_403(client, version):
    login(client, make_user("nobody", None))
    assert client.get(reverse("registry:model_list")).status_code == 403


def test_the_nav_shows_only_what_the_role_may_use(client, engineer, officer, manager):
    html = login(client, engineer).get(reverse("registry:model_list")).content.decode()
    assert reverse("jobs:list") in html and reverse("audit:list") not in html
    assert "Register a model" in html
    client.logout()
    html = login(client, officer).get(reverse("registry:model_list")).content.decode()
    assert reverse("audit:list") in html and "Register a model" not in html
    client.logout()
    html = login(client, manager).get(reverse("registry:model_list")).content.decode()
    assert reverse("audit:list") not in html and "Register a model" not in html


# --- list -------------------------------------------------------------------------------------------------------


def _bulk_models(count: int, owner: User) -> None:
    """Rows written directly: what matters here is how many queries the page needs, not how they got there."""
    tags = [Tag.objects.get_or_create(name=f"tag{i}")[0] for i in range(3)]
    start = RegisteredModel.objects.count()
    for i in range(start, start + count):
        model = RegisteredModel.objects.create(name=f"model-{i:03d}", owner=owner, risk_tier="high")
        model.tags.set(tags[: 1 + i % 3])
        mv = ModelVersion.objects.create(
            model=model, version="1", artifact=f"x/{i}", sha256=f"{i:064d}", size=1, status=VersionStatus.READY
        )
        RegisteredModel.objects.filter(pk=model.pk).update(latest_version=mv, version_count=1)
        AliasAssignment.objects.create(model=model, alias="champion", version=mv, started_at=timezone.now())


def _count_queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries)


def test_the_registry_list_runs_a_constant_number_of_queries(client, engineer):
    login(client, engineer)
    url = reverse("registry:model_list")
    _bulk_models(5, engineer)
    few = _count_queries(client, url)
    _bulk_models(45, engineer)
    many = _count_queries(client, url)
    assert RegisteredModel.objects.count() == 50
    assert few == many, f"5 models took {few} queries, 50 took {many}"
    html = client.get(url).content.decode()
    assert html.count('class="cell-title"') == 50
    assert many <= 12


def test_the_registry_list_escapes_what_users_typed(client, engineer):
    login(client, engineer)
    probe = model_create(name="xss-probe", owner=engineer, description='<script>alert("x")</script> & "quotes"')
    # The service refuses such a tag now (tests/models_registry/test_limits.py); one stored before must still be
    # escaped.
    probe.tags.add(Tag.objects.create(name="<b>bold</b>"))
    html = client.get(reverse("registry:model_list")).content.decode()
    assert "<script>alert" not in html and "<b>bold</b>" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &quot;quotes&quot;" in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html and 'href="?tag=%3Cb%3Ebold%3C/b%3E"' in html


def test_the_registry_list_filters_searches_and_sorts(client, engineer):
    login(client, engineer)
    model_create(name="fraud-score", owner=engineer, risk_tier="critical", tags=["fraud"], description="cards")
    model_create(name="churn", owner=engineer, risk_tier="limited", tags=["marketing"])
    model_create(name="credit-risk", owner=engineer, risk_tier="high", tags=["credit"], description="loans")
    url = reverse("registry:model_list")

    def names(**params: str) -> list[str]:
        response = client.get(url, params)
        assert response.status_code == 200
        return [m["name"] for m in response.context["models"]]

    assert names() == ["churn", "credit-risk", "fraud-score"]
    assert names(q="loan") == ["credit-risk"]
    assert names(tag="FRAUD") == ["fraud-score"]
    assert names(risk_tier="limited") == ["churn"]
    assert names(sort="-name") == ["fraud-score", "credit-risk", "churn"]
    assert names(sort="nonsense") == ["churn", "credit-risk", "fraud-score"]
    assert names(q="nothing-like-this") == []
    assert "No model matches these filters" in client.get(url, {"q": "zzz"}).content.decode()


def _chosen_filters(html: str) -> dict[str, list[str]]:
    """The options each filter select marks as selected."""
    selects = {
        name: re.search(rf'<select name="{name}" id="id_{name}">(.*?)</select>', html, re.S)
        for name in ("risk_tier", "status", "sort")
    }
    return {name: re.findall(r'<option value="([^"]*)" selected>', match.group(1)) for name, match in selects.items()}


def test_the_registry_list_filters_show_what_was_chosen(client, engineer):
    login(client, engineer)
    html = client.get(reverse("registry:model_list"), {"risk_tier": "high", "sort": "-versions"}).content.decode()
    assert _chosen_filters(html) == {"risk_tier": ["high"], "status": [""], "sort": ["-versions"]}
    risk_select = html.split('id="id_risk_tier">')[1].split("</select>")[0]
    assert re.findall(r'<option value="([^"]*)"', risk_select) == ["", "minimal", "limited", "high", "critical"]
    bad = client.get(reverse("registry:model_list"), {"risk_tier": "<b>", "sort": "nonsense"}).content.decode()
    # The list ignores values it does not know, so no option may claim them: the browser shows the first, the default.
    assert _chosen_filters(bad) == {"risk_tier": [], "status": [""], "sort": []}
    assert "<b>" not in bad.split('id="id_risk_tier"')[1].split("</select>")[0]


def test_the_registry_list_filters_by_version_status(client, engineer, version):
    login(client, engineer)
    model_create(name="empty", owner=engineer)
    url = reverse("registry:model_list")
    assert [m["name"] for m in client.get(url, {"status": "validating"}).context["models"]] == ["credit-risk"]
    assert [m["name"] for m in client.get(url, {"status": "ready"}).context["models"]] == []


def test_the_registry_list_pages_by_100(client, engineer):
    login(client, engineer)
    _bulk_models(101, engineer)
    first = client.get(reverse("registry:model_list"))
    assert len(first.context["models"]) == 100
    second = client.get(reverse("registry:model_list"), {"page": 2})
    assert [m["name"] for m in second.context["models"]] == ["model-100"]


# --- model create / edit ---------------------------------------------------------------------------------------


def test_an_engineer_registers_a_model_through_the_form(client, engineer):
    login(client, engineer)
    response = client.post(
        reverse("registry:model_create"),
        {"name": "fraud-score", "description": "d", "risk_tier": "critical", "intended_use": "u", "tags": "Fraud, x"},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("registry:model_detail", args=["fraud-score"])
    model = RegisteredModel.objects.get(name="fraud-score")
    assert model.owner == engineer and model.risk_tier == "critical"
    assert sorted(t.name for t in model.tags.all()) == ["fraud", "x"]
    assert AuditEvent.objects.filter(action="model.create", object_id=str(model.pk)).exists()


def test_the_create_form_shows_a_duplicate_name_on_the_name_field(client, engineer, model):
    login(client, engineer)
    response = client.post(reverse("registry:model_create"), {"name": "credit-risk", "risk_tier": "high"})
    assert response.status_code == 409
    assert "already exists" in response.context["form"].errors["name"][0]
    assert "already exists" in response.content.decode()
    assert RegisteredModel.objects.count() == 1


def test_the_create_form_shows_a_bad_name_and_keeps_the_input(client, engineer):
    login(client, engineer)
    response = client.post(
        reverse("registry:model_create"), {"name": "bad name!", "risk_tier": "high", "description": "keep me"}
    )
    assert response.status_code == 400
    assert "name" in response.context["form"].errors
    assert "keep me" in response.content.decode()
    assert not RegisteredModel.objects.exists()


def test_the_create_form_refuses_an_unknown_risk_tier(client, engineer):
    login(client, engineer)
    response = client.post(reverse("registry:model_create"), {"name": "ok", "risk_tier": "extreme"})
    assert response.status_code == 400
    assert "risk_tier" in response.context["form"].errors


def test_an_engineer_edits_a_model_and_the_change_is_audited(client, engineer, model):
    login(client, engineer)
    form = client.get(reverse("registry:model_edit", args=[model.name]))
    assert "credit, retail" in form.content.decode()
    response = client.post(
        reverse("registry:model_edit", args=[model.name]),
        {"description": "new", "risk_tier": "critical", "intended_use": "", "tags": "credit"},
    )
    assert response.status_code == 302
    model.refresh_from_db()
    assert model.description == "new" and model.risk_tier == "critical"
    event = AuditEvent.objects.get(action="model.update")
    assert event.before["risk_tier"] == "high" and event.after["risk_tier"] == "critical"


def test_a_manager_cannot_post_to_the_model_forms(client, manager, model):
    login(client, manager)
    assert client.post(reverse("registry:model_create"), {"name": "x", "risk_tier": "high"}).status_code == 403
    assert client.post(reverse("registry:model_edit", args=[model.name]), {"risk_tier": "minimal"}).status_code == 403
    model.refresh_from_db()
    assert model.risk_tier == "high" and RegisteredModel.objects.count() == 1


def test_an_unknown_model_is_404(client, engineer):
    login(client, engineer)
    assert client.get(reverse("registry:model_detail", args=["nope"])).status_code == 404
    assert client.get(reverse("registry:version_detail", args=["nope", "1"])).status_code == 404


# --- model detail and aliases -----------------------------------------------------------------------------------


def test_the_model_page_shows_versions_aliases_and_history(client, officer, engineer, model, ready_version):
    second = version_create(
        model=model,
        version="1.1.0",
        artifact=temp_upload(mlp_bytes(1)),
        input_spec=MLP_SPEC,
        created_by=engineer,
        parent_version="1.0.0",
    )
    version_record_inspection(version_id=second.pk, ok=True, inspection=INSPECTION, reason="")
    second.refresh_from_db()
    now = timezone.now()
    alias_set(model=model, alias="champion", version=ready_version, actor=engineer, at=now - timedelta(days=10))
    alias_set(
        model=model, alias="champion", version=second, actor=engineer, reason="promoted", at=now - timedelta(days=1)
    )
    login(client, officer)
    html = client.get(reverse("registry:model_detail", args=[model.name])).content.decode()
    assert "1.0.0" in html and "1.1.0" in html
    assert "promoted" in html and "current" in html
    assert html.count('class="alias alias-champion"') >= 3  # current card, versions table, history rows


def test_it_answers_who_held_an_alias_on_a_date(client, officer, engineer, model, ready_version):
    alias_set(
        model=model,
        alias="champion",
        version=ready_version,
        actor=engineer,
        at=timezone.make_aware(timezone.datetime(2025, 12, 1)),
    )
    login(client, officer)
    url = reverse("registry:model_detail", args=[model.name])
    response = client.get(url, {"alias": "champion", "at": "2026-01-01T00:00"})
    assert response.context["holder"].version == ready_version
    assert "was held by" in response.content.decode()
    before = client.get(url, {"alias": "champion", "at": "2025-11-01T00:00"})
    assert before.context["holder"] is None
    assert "No version held" in before.content.decode()
    bad = client.get(url, {"alias": "champion", "at": "not a date"})
    assert bad.status_code == 200 and bad.context["holder_form"].errors["at"]


# --- version detail ---------------------------------------------------------------------------------------------


def test_the_version_page_shows_hashes_lineage_inspection_and_jobs(client, officer, ready_version, artifact_bytes):
    login(client, officer)
    response = client.get(reverse("registry:version_detail", args=["credit-risk", "1.0.0"]))
    html = response.content.decode()
    assert ready_version.sha256 in html and str(len(artifact_bytes)) in html
    assert "abc1234" in html and "s3://data/credit" in html
    assert "2242" in html and "aten::linear" in html and "forward(__torch__.CreditMLP" in html
    assert "[2, 2]" in html and "output[1]" in html
    assert 'data-status="ready"' in html and "hx-trigger" not in html
    assert "auc" in html and "baseline" in html
    assert "inspect" in html  # the version's job
    assert reverse("registry:version_download", args=["credit-risk", "1.0.0", "artifact"]) in html


def test_a_validating_version_polls_a_partial_until_it_is_decided(client, engineer, version):
    login(client, engineer)
    url = reverse("registry:version_detail", args=["credit-risk", "1.0.0"])
    html = client.get(url).content.decode()
    assert 'id="version-status"' in html and 'hx-trigger="every 1s"' in html
    partial = client.get(url, HTTP_HX_REQUEST="true")
    body = partial.content.decode()
    assert "<html" not in body and 'data-status="validating"' in body and "every 1s" in body
    version_record_inspection(version_id=version.pk, ok=False, inspection=None, reason="The dry run failed: 2x7")
    body = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert 'data-status="rejected"' in body and "The dry run failed: 2x7" in body
    assert "hx-trigger" not in body  # decided: polling stops


def test_a_manager_sees_no_download_links(client, manager, ready_version):
    login(client, manager)
    html = client.get(reverse("registry:version_detail", args=["credit-risk", "1.0.0"])).content.decode()
    assert "/download/" not in html


def test_the_download_streams_the_exact_bytes_as_an_attachment(client, officer, version, artifact_bytes):
    login(client, officer)
    response = client.get(reverse("registry:version_download", args=["credit-risk", "1.0.0", "artifact"]))
    assert response.status_code == 200
    assert response.streaming
    assert b"".join(response.streaming_content) == artifact_bytes
    assert response["Content-Disposition"] == 'attachment; filename="credit-risk-1.0.0.pt"'


def test_a_missing_companion_download_is_404(client, officer, version):
    login(client, officer)
    assert client.get(reverse("registry:version_download", args=["credit-risk", "1.0.0", "onnx"])).status_code == 404
    assert client.get(reverse("registry:version_download", args=["credit-risk", "1.0.0", "etc"])).status_code == 404


def test_the_onnx_and_sample_downloads_carry_their_own_names(client, engineer, model):
    import io

    import numpy as np

    buffer = io.BytesIO()
    np.savez(buffer, x=np.zeros((2, 32), dtype=np.float32))
    version_create(
        model=model,
        version="2",
        artifact=temp_upload(mlp_bytes(3)),
        created_by=engineer,
        onnx=temp_upload(b"onnx-bytes", "m.onnx"),
        sample_inputs=temp_upload(buffer.getvalue(), "s.npz"),
    )
    login(client, engineer)
    onnx = client.get(reverse("registry:version_download", args=["credit-risk", "2", "onnx"]))
    assert b"".join(onnx.streaming_content) == b"onnx-bytes"
    assert 'filename="credit-risk-2.onnx"' in onnx["Content-Disposition"]
    samples = client.get(reverse("registry:version_download", args=["credit-risk", "2", "sample_inputs"]))
    assert b"".join(samples.streaming_content) == buffer.getvalue()
    assert 'filename="credit-risk-2.npz"' in samples["Content-Disposition"]


# --- upload -----------------------------------------------------------------------------------------------------


def _upload_data(**overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "version": "2.0.0",
        "artifact": SimpleUploadedFile("model.pt", mlp_bytes(5)),
        "input_spec": json.dumps(MLP_SPEC),
        "source_commit": "deadbeef",
        "training_data": "s3://data/2026",
        "parent_version": "",
        "description": "second",
        "metrics": '{"auc": 0.9}',
        "tags": "candidate, q1",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def _stored_files() -> set[Path]:
    root = Path(settings.FORGE_STORAGE)
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def test_the_upload_page_shows_the_form_with_an_example_spec(client, engineer, version):
    login(client, engineer)
    html = client.get(reverse("registry:version_upload", args=["credit-risk"])).content.decode()
    assert 'id="upload-form"' in html and "upload.js" in html and "htmx.min.js" in html
    assert "&quot;shape&quot;: [null, 32]" in html
    assert '<option value="1.0.0">' in html  # parent choices


def test_an_xhr_upload_creates_the_version_and_answers_its_url(client, engineer, version):
    login(client, engineer)
    response = client.post(
        reverse("registry:version_upload", args=["credit-risk"]), _upload_data(parent_version="1.0.0"), **XHR
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["url"] == reverse("registry:version_detail", args=["credit-risk", "2.0.0"])
    mv = ModelVersion.objects.get(version="2.0.0")
    assert mv.status == "validating" and mv.parent == version and mv.metrics == {"auc": 0.9}
    assert mv.source_commit == "deadbeef" and sorted(t.name for t in mv.tags.all()) == ["candidate", "q1"]
    assert Job.objects.filter(kind="inspect", subject_id=str(mv.pk)).exists()
    assert AuditEvent.objects.filter(action="version.upload", actor_label=engineer.username).exists()


def test_a_plain_form_upload_redirects_to_the_version(client, engineer, model):
    login(client, engineer)
    response = client.post(reverse("registry:version_upload", args=["credit-risk"]), _upload_data())
    assert response.status_code == 302
    assert response["Location"] == reverse("registry:version_detail", args=["credit-risk", "2.0.0"])


@pytest.mark.parametrize(
    ("overrides", "status", "field", "words"),
    [
        ({"artifact": None}, 400, "artifact", "required"),
        ({"artifact": SimpleUploadedFile("m.pt", b"")}, 400, "artifact", "empty"),
        ({"artifact": SimpleUploadedFile("m.pt", b"\x00\xffrandom bytes" * 50)}, 400, "artifact", ""),
        ({"input_spec": "{not json"}, 400, "input_spec", "not valid JSON"),
        ({"input_spec": ""}, 400, "input_spec", "input_spec"),
        ({"metrics": "[1, 2]"}, 400, "metrics", "JSON object"),
        ({"metrics": '{"note": "\\udfff"}'}, 400, "metrics", "lone surrogate"),
        ({"version": "1.0.0"}, 409, "version", "already has a version"),
        ({"version": "bad version"}, 400, "version", ""),
        ({"parent_version": "9.9"}, 400, "parent_version", ""),
    ],
    ids=[
        "missing",
        "empty",
        "random-bytes",
        "bad-spec",
        "no-spec",
        "bad-metrics",
        "lone-surrogate-metrics",
        "duplicate",
        "bad-name",
        "parent",
    ],
)
def test_a_refused_xhr_upload_names_the_field_and_leaves_nothing(
    client, engineer, version, overrides, status, field, words
):
    login(client, engineer)
    before_files, before_versions = _stored_files(), ModelVersion.objects.count()
    response = client.post(reverse("registry:version_upload", args=["credit-risk"]), _upload_data(**overrides), **XHR)
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["field"] == field and error["message"] and error["code"]
    assert words in error["message"]
    assert ModelVersion.objects.count() == before_versions
    assert _stored_files() == before_files


def test_a_refused_form_upload_shows_the_error_on_the_field_and_keeps_the_input(client, engineer, model):
    login(client, engineer)
    response = client.post(
        reverse("registry:version_upload", args=["credit-risk"]),
        _upload_data(input_spec='{"inputs": []}', description="keep this text"),
    )
    assert response.status_code == 400
    assert "at least one input" in response.context["form"].errors["input_spec"][0]
    html = response.content.decode()
    assert "keep this text" in html and "at least one input" in html


def test_an_upload_over_the_limit_is_refused_with_a_clear_message(client, engineer, model, settings):
    settings.FORGE_MAX_ARTIFACT_BYTES = 4096
    login(client, engineer)
    before_files = _stored_files()
    response = client.post(reverse("registry:version_upload", args=["credit-risk"]), _upload_data(), **XHR)
    assert response.status_code == 413, response.content
    error = response.json()["error"]
    assert error == {"code": "too_large", "field": "artifact", "message": error["message"]}
    assert "larger than the limit of 4.0 KiB" in error["message"]
    assert not ModelVersion.objects.exists() and _stored_files() == before_files


def test_a_manager_cannot_upload(client, manager, model):
    login(client, manager)
    response = client.post(reverse("registry:version_upload", args=["credit-risk"]), _upload_data(), **XHR)
    assert response.status_code == 403
    assert not ModelVersion.objects.exists()


# --- dashboard and admin ----------------------------------------------------------------------------------------


def test_the_dashboard_panel_counts_models_and_versions(client, manager, ready_version):
    login(client, manager)
    home = client.get(reverse("home")).content.decode()
    assert reverse("registry:dashboard_panel") in home
    panel = client.get(reverse("registry:dashboard_panel"))
    assert panel.context["counts"]["models"] == 1 and panel.context["counts"]["ready"] == 1
    assert "credit-risk" in panel.content.decode()


@pytest.fixture
def staff_client(client: Client) -> Client:
    User.objects.create_superuser("root", "root@example.com", PASSWORD)
    assert client.login(username="root", password=PASSWORD)
    return client


def test_the_admin_lists_every_registry_model(staff_client, ready_version, engineer):
    alias_set(model=ready_version.model, alias="champion", version=ready_version, actor=engineer)
    for name in ("registeredmodel", "modelversion", "tag", "aliasassignment"):
        assert staff_client.get(f"/admin/models_registry/{name}/").status_code == 200, name


def test_the_admin_never_edits_a_versions_artifact_or_hash(staff_client, ready_version):
    url = f"/admin/models_registry/modelversion/{ready_version.pk}/change/"
    page = staff_client.get(url)
    assert page.status_code == 200
    form_fields = page.context["adminform"].form.fields
    assert not {"artifact", "sha256", "size", "status"} & set(form_fields)
    staff_client.post(url, {"description": "edited", "metrics": "{}", "sha256": "0" * 64, "size": 1})
    ready_version.refresh_from_db()
    assert ready_version.description == "edited"
    assert ready_version.sha256 != "0" * 64 and ready_version.size > 1
    assert AuditEvent.objects.filter(action="admin.change", object_id=str(ready_version.pk)).exists()


def test_alias_history_is_read_only_in_the_admin(staff_client, ready_version, engineer):
    assignment = alias_set(model=ready_version.model, alias="champion", version=ready_version, actor=engineer)
    assert staff_client.get("/admin/models_registry/aliasassignment/add/").status_code == 403
    response = staff_client.post(f"/admin/models_registry/aliasassignment/{assignment.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert AliasAssignment.objects.filter(pk=assignment.pk).exists()


def test_read_only_pages_refuse_other_methods(client, engineer, version):
    login(client, engineer)
    urls = page_urls(version)
    for page in ("list", "model", "version", "download", "panel"):
        assert client.post(urls[page]).status_code == 405, page
    assert client.delete(urls["upload"]).status_code == 405
