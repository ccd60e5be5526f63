"""Console pages for rollouts: the list, a new rollout, a rollout's page with its controls and approval panel."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from forge_site.roles import require_action
from models_registry import selectors as registry_selectors
from models_registry.models import ModelVersion
from rollouts import charts, selectors, services
from rollouts.forms import AdvanceForm, DecisionForm, ReasonForm, RolloutCreateForm
from rollouts.models import Rollout, RolloutState
from rollouts.plans import plan_text
from rollouts.requirements import promotion_requirements
from rollouts.services import RolloutError

PAGE_SIZE = 50
STATE_FILTERS = [("", "All"), ("active", "Active"), *RolloutState.choices]


def _rollout_or_404(rollout_id: int) -> Rollout:
    try:
        return selectors.rollout_get(rollout_id=rollout_id)
    except Rollout.DoesNotExist as exc:
        raise Http404(f"No rollout #{rollout_id}.") from exc


@require_action("rollout.view")
@require_safe
def rollout_list(request: HttpRequest) -> HttpResponse:
    state = request.GET.get("state", "")
    if state not in dict(STATE_FILTERS):
        state = ""
    page = Paginator(selectors.rollout_list(state=state), PAGE_SIZE).get_page(request.GET.get("page"))
    rollouts = list(page.object_list)
    traffic = selectors.traffic_windows(rollouts=rollouts)
    rows = []
    for rollout in rollouts:
        analysis = selectors.rollout_analysis(rollout=rollout, traffic=traffic[rollout.pk], verdicts={})
        rows.append({"rollout": rollout, "plan": plan_text(rollout.plan), "analysis": analysis})
    context = {"rows": rows, "page": page, "state": state, "states": STATE_FILTERS}
    return render(request, "rollouts/rollout_list.html", context)


@require_action("rollout.manage")
@require_http_methods(["GET", "POST"])
def rollout_create(request: HttpRequest) -> HttpResponse:
    initial = {"model": request.GET.get("model", "")}
    form = RolloutCreateForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        model = registry_selectors.model_by_name(data["model"])
        challenger = ModelVersion.objects.filter(model=model, version=data["challenger"].strip()).first()
        if model is None or challenger is None:
            form.add_error("challenger", f"{data['model']} has no version {data['challenger']!r}.")
        else:
            metric = {"name": data["primary_metric"], "higher_is_better": not data["lower_is_better"]}
            try:
                rollout = services.rollout_create(
                    model=model,
                    challenger=challenger,
                    plan=data["plan"],
                    actor=request.user,
                    unit_key=data["unit_key"].strip(),
                    guardrails=data["guardrails"],
                    primary_metric=metric,
                    advance_mode=data["advance_mode"],
                    description=data["description"],
                )
            except RolloutError as exc:
                field = (exc.field or "").split("[")[0].split(".")[0]
                form.add_error(field if field in form.fields else None, exc.message)
            else:
                messages.success(request, f"Rollout #{rollout.pk} drafted. Start it when ready.")
                return redirect("rollouts:detail", rollout_id=rollout.pk)
    return render(request, "rollouts/rollout_form.html", {"form": form})


@require_action("rollout.view")
@require_safe
def rollout_detail(request: HttpRequest, rollout_id: int) -> HttpResponse:
    rollout = _rollout_or_404(rollout_id)
    traffic = selectors.traffic_window(rollout=rollout)
    analysis = selectors.rollout_analysis(rollout=rollout, traffic=traffic)
    series = selectors.time_series(rollout=rollout)
    pending = selectors.pending_promotion(rollout=rollout)
    requirements = promotion_requirements(rollout=rollout, traffic=traffic) if not rollout.is_terminal else []
    progress = selectors.step_progress(rollout=rollout, now=timezone.now()) if rollout.step_started_at else None
    context: dict[str, Any] = {
        "rollout": rollout,
        "plan": plan_text(rollout.plan),
        "steps": [
            {**step, "number": n + 1, "current": n == rollout.step_index and rollout.state != RolloutState.DRAFT}
            for n, step in enumerate(rollout.plan)
        ],
        "analysis": analysis,
        "stats": analysis.to_json(),
        "charts": charts.rollout_charts(series, metric_name=analysis.metric.name),
        "pending": pending,
        "history": list(selectors.promotion_history(rollout=rollout)),
        "requirements": requirements,
        "any_unmet": any(r.status == "unmet" for r in requirements),
        "progress": progress,
        "predict_url": services.predict_url(rollout),
        "own_request": pending is not None and pending.requested_by_id == request.user.pk,
    }
    return render(request, "rollouts/rollout_detail.html", context)


def _act(request: HttpRequest, rollout_id: int, done: str, action: Callable[[Rollout], Any]) -> HttpResponse:
    rollout = _rollout_or_404(rollout_id)
    try:
        action(rollout)
    except RolloutError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, done)
    return redirect("rollouts:detail", rollout_id=rollout_id)


def _form(form_class: type, request: HttpRequest) -> dict[str, Any]:
    form = form_class(request.POST)
    return form.cleaned_data if form.is_valid() else {name: "" for name in form.fields}


@require_action("rollout.manage")
@require_POST
def rollout_start(request: HttpRequest, rollout_id: int) -> HttpResponse:
    return _act(request, rollout_id, "Started.", lambda r: services.rollout_start(rollout=r, actor=request.user))


@require_action("rollout.manage")
@require_POST
def rollout_advance(request: HttpRequest, rollout_id: int) -> HttpResponse:
    data = _form(AdvanceForm, request)
    return _act(
        request,
        rollout_id,
        "Advanced to the next step.",
        lambda r: services.rollout_advance(rollout=r, actor=request.user, override_reason=data["override_reason"]),
    )


@require_action("rollout.control")
@require_POST
def rollout_pause(request: HttpRequest, rollout_id: int) -> HttpResponse:
    data = _form(ReasonForm, request)
    return _act(
        request,
        rollout_id,
        "Paused: everyone is served by the champion.",
        lambda r: services.rollout_pause(rollout=r, actor=request.user, reason=data["reason"]),
    )


@require_action("rollout.control")
@require_POST
def rollout_resume(request: HttpRequest, rollout_id: int) -> HttpResponse:
    return _act(request, rollout_id, "Resumed.", lambda r: services.rollout_resume(rollout=r, actor=request.user))


@require_action("rollout.control")
@require_POST
def rollout_rollback(request: HttpRequest, rollout_id: int) -> HttpResponse:
    data = _form(ReasonForm, request)
    return _act(
        request,
        rollout_id,
        "Rolled back: the challenger gets no traffic.",
        lambda r: services.rollout_rollback(rollout=r, actor=request.user, reason=data["reason"]),
    )


@require_action("rollout.manage")
@require_POST
def rollout_abort(request: HttpRequest, rollout_id: int) -> HttpResponse:
    data = _form(ReasonForm, request)
    return _act(
        request,
        rollout_id,
        "Draft aborted.",
        lambda r: services.rollout_abort(rollout=r, actor=request.user, reason=data["reason"]),
    )


@require_action("promotion.request")
@require_POST
def promotion_request(request: HttpRequest, rollout_id: int) -> HttpResponse:
    data = _form(DecisionForm, request)
    return _act(
        request,
        rollout_id,
        "Promotion asked for: a manager decides.",
        lambda r: services.promotion_request(rollout=r, actor=request.user, comment=data["comment"]),
    )


@require_action("promotion.decide")
@require_POST
def promotion_approve(request: HttpRequest, rollout_id: int) -> HttpResponse:
    data = _form(DecisionForm, request)
    return _act(
        request,
        rollout_id,
        "Approved: the challenger is the champion now.",
        lambda r: services.promotion_approve(
            rollout=r, actor=request.user, comment=data["comment"], override_reason=data["override_reason"]
        ),
    )


@require_action("promotion.decide")
@require_POST
def promotion_reject(request: HttpRequest, rollout_id: int) -> HttpResponse:
    data = _form(DecisionForm, request)
    return _act(
        request,
        rollout_id,
        "Rejected: the rollout runs on.",
        lambda r: services.promotion_reject(rollout=r, actor=request.user, comment=data["comment"]),
    )


@require_action("promotion.decide")
@require_safe
def approval_queue_panel(request: HttpRequest) -> HttpResponse:
    """The managers' approval queue, for their home page (loaded by htmx)."""
    return render(
        request, "rollouts/inc/approval_queue.html", {"queue": list(selectors.approval_queue(user=request.user)[:20])}
    )
