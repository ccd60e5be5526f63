"""Alert pages under /alerts/: the history (per model and version) with delivery attempts, rules and destinations
(forms that call the services; deleting asks first), and sending a test notification."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from forge_site.roles import require_action
from governance.alert_filters import AlertFilter
from governance.alert_forms import DestinationForm, RuleForm
from governance.models import AlertDestination, AlertRule, DeliveryStatus, DestinationKind
from governance.selectors import alerts as selectors
from governance.services.alert_delivery import alert_destination_test
from governance.services.alert_destinations import (
    AlertConfigError,
    alert_destination_create,
    alert_destination_delete,
    alert_destination_update,
)
from governance.services.alerts import alert_rule_create, alert_rule_delete, alert_rule_update
from models_registry.models import ModelVersion

PAGE_SIZE = 50


def _show_error(form: forms.Form, exc: AlertConfigError) -> None:
    """A service's refusal on the field it names, or on the form as a whole."""
    form.add_error(exc.field if exc.field in form.fields else None, exc.message)


def _pending(deliveries: Any) -> bool:
    return any(d.status in (DeliveryStatus.PENDING, DeliveryStatus.SENDING) for d in deliveries)


# --- history --------------------------------------------------------------------------------------------------------


@require_action("alerts.view")
@require_safe
def alert_list(request: HttpRequest) -> HttpResponse:
    filters = AlertFilter(request.GET or None, queryset=selectors.alert_list())
    alerts = filters.qs if filters.is_bound and filters.is_valid() else selectors.alert_list()
    page = Paginator(alerts, PAGE_SIZE).get_page(request.GET.get("page"))
    params = request.GET.copy()
    params.pop("page", None)
    context = {"filters": filters, "page": page, "alerts": page.object_list, "query": params.urlencode()}
    return render(request, "governance/alerts/alert_list.html", context)


@require_action("alerts.view")
@require_safe
def alert_detail(request: HttpRequest, alert_id: int) -> HttpResponse:
    alert = selectors.alert_get(alert_id)
    if alert is None:
        raise Http404(f"No alert #{alert_id}.")
    deliveries = list(alert.deliveries.all())
    context = {
        "alert": alert,
        "deliveries": deliveries,
        "live": _pending(deliveries),
        "evidence_url": _job_url(alert.details.get("job_id")),
    }
    if request.headers.get("HX-Request") == "true":
        return render(request, "governance/inc/delivery_log.html", context)
    return render(request, "governance/alerts/alert_detail.html", context)


def _job_url(job_id: Any) -> str:
    try:
        return reverse("jobs:detail", args=[job_id]) if job_id else ""
    except NoReverseMatch:  # not a job id (a caller recorded something else)
        return ""


# --- rules ----------------------------------------------------------------------------------------------------------


@require_action("alerts.view")
@require_safe
def rule_list(request: HttpRequest) -> HttpResponse:
    return render(request, "governance/alerts/rule_list.html", {"rules": selectors.rule_list()})


def _rule_fields(form: RuleForm) -> dict[str, Any]:
    data = dict(form.cleaned_data)
    model, label = data["model"], data.pop("version").strip()
    if label and model is None:
        raise AlertConfigError("A rule on one version names its model too.", field="version")
    version = None
    if label:
        version = ModelVersion.objects.filter(model=model, version=label).first()
        if version is None:
            raise AlertConfigError(f"{model.name} has no version {label!r}.", field="version")
    data["version"] = version
    data["name"] = data["name"].strip()
    data["metric"] = data["metric"].strip()
    data["feature"] = data["feature"].strip()
    return data


def _rule_or_404(rule_id: int) -> AlertRule:
    rule = selectors.rule_get(rule_id)
    if rule is None:
        raise Http404(f"No alert rule #{rule_id}.")
    return rule


@require_action("alerts.manage")
@require_http_methods(["GET", "HEAD", "POST"])
def rule_create(request: HttpRequest) -> HttpResponse:
    form = RuleForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            rule = alert_rule_create(actor=request.user, **_rule_fields(form))
        except AlertConfigError as exc:
            _show_error(form, exc)
        else:
            messages.success(request, f"Rule {rule.name} added; it is judged on the latest results now.")
            return redirect("alerts:rule_list")
    status = 400 if request.method == "POST" else 200
    return render(request, "governance/alerts/rule_form.html", {"form": form, "creating": True}, status=status)


@require_action("alerts.manage")
@require_http_methods(["GET", "HEAD", "POST"])
def rule_edit(request: HttpRequest, rule_id: int) -> HttpResponse:
    rule = _rule_or_404(rule_id)
    form = RuleForm(request.POST) if request.method == "POST" else RuleForm.for_rule(rule)
    if request.method == "POST" and form.is_valid():
        try:
            alert_rule_update(rule=rule, actor=request.user, **_rule_fields(form))
        except AlertConfigError as exc:
            _show_error(form, exc)
        else:
            messages.success(request, f"Rule {rule.name} saved.")
            return redirect("alerts:rule_list")
    status = 400 if request.method == "POST" else 200
    context = {"form": form, "creating": False, "rule": rule}
    return render(request, "governance/alerts/rule_form.html", context, status=status)


@require_action("alerts.manage")
@require_http_methods(["GET", "HEAD", "POST"])
def rule_delete(request: HttpRequest, rule_id: int) -> HttpResponse:
    rule = _rule_or_404(rule_id)
    if request.method == "POST":
        alert_rule_delete(rule=rule, actor=request.user)
        messages.success(request, f"Rule {rule.name} deleted; its open alerts were resolved.")
        return redirect("alerts:rule_list")
    context = {"what": "rule", "name": rule.name, "cancel_url": "alerts:rule_list", "rule": rule}
    return render(request, "governance/alerts/confirm_delete.html", context)


# --- destinations ---------------------------------------------------------------------------------------------------


def _destination_or_404(destination_id: int) -> AlertDestination:
    destination = selectors.destination_get(destination_id)
    if destination is None:
        raise Http404(f"No alert destination #{destination_id}.")
    return destination


@require_action("alerts.view")
@require_safe
def destination_list(request: HttpRequest) -> HttpResponse:
    return render(request, "governance/alerts/destination_list.html", {"destinations": selectors.destination_list()})


@require_action("alerts.view")
@require_safe
def destination_detail(request: HttpRequest, destination_id: int) -> HttpResponse:
    destination = _destination_or_404(destination_id)
    deliveries = selectors.destination_deliveries(destination)
    context = {"destination": destination, "deliveries": deliveries, "live": _pending(deliveries), "show_alert": True}
    if request.headers.get("HX-Request") == "true":
        return render(request, "governance/inc/delivery_log.html", context)
    return render(request, "governance/alerts/destination_detail.html", context)


def _secret_for(kind: str, data: dict[str, Any]) -> dict[str, str]:
    if kind == DestinationKind.PAGERDUTY:
        return {"routing_key": data.get("routing_key", "")}
    if kind == DestinationKind.WEBHOOK:
        return {"signing_secret": data.get("signing_secret", "")}
    return {}


@require_action("alerts.manage")
@require_http_methods(["GET", "HEAD", "POST"])
def destination_create(request: HttpRequest) -> HttpResponse:
    form = DestinationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            destination = alert_destination_create(
                actor=request.user,
                name=data["name"].strip(),
                kind=data["kind"],
                url=data["url"],
                enabled=data["enabled"],
                min_severity=data["min_severity"],
                models=list(data["models"]),
                **_secret_for(data["kind"], data),
            )
        except AlertConfigError as exc:
            _show_error(form, exc)
        else:
            messages.success(request, f"Destination {destination.name} added. Send a test to check it is reachable.")
            return redirect("alerts:destination_detail", destination_id=destination.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "governance/alerts/destination_form.html", {"form": form, "creating": True}, status=status)


@require_action("alerts.manage")
@require_http_methods(["GET", "HEAD", "POST"])
def destination_edit(request: HttpRequest, destination_id: int) -> HttpResponse:
    destination = _destination_or_404(destination_id)
    if request.method == "POST":
        form = DestinationForm(request.POST, destination=destination)
    else:
        form = DestinationForm.for_destination(destination)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        secrets = {k: v for k, v in _secret_for(destination.kind, data).items() if v}
        try:
            alert_destination_update(
                destination=destination,
                actor=request.user,
                name=data["name"].strip(),
                enabled=data["enabled"],
                url=data["url"] or None,
                min_severity=data["min_severity"],
                models=list(data["models"]),
                **secrets,
            )
        except AlertConfigError as exc:
            _show_error(form, exc)
        else:
            messages.success(request, f"Destination {destination.name} saved.")
            return redirect("alerts:destination_detail", destination_id=destination.pk)
    status = 400 if request.method == "POST" else 200
    context = {"form": form, "creating": False, "destination": destination}
    return render(request, "governance/alerts/destination_form.html", context, status=status)


@require_action("alerts.manage")
@require_http_methods(["GET", "HEAD", "POST"])
def destination_delete(request: HttpRequest, destination_id: int) -> HttpResponse:
    destination = _destination_or_404(destination_id)
    if request.method == "POST":
        alert_destination_delete(destination=destination, actor=request.user)
        messages.success(request, f"Destination {destination.name} deleted.")
        return redirect("alerts:destination_list")
    context = {"what": "destination", "name": destination.name, "cancel_url": "alerts:destination_list"}
    return render(request, "governance/alerts/confirm_delete.html", context)


@require_action("alerts.manage")
@require_POST
def destination_test(request: HttpRequest, destination_id: int) -> HttpResponse:
    destination = _destination_or_404(destination_id)
    alert_destination_test(destination=destination, actor=request.user)
    messages.info(request, f"A test notification to {destination.name} is on its way; its attempts appear below.")
    return redirect("alerts:destination_detail", destination_id=destination.pk)
