"""Rollout API: one thin view per operation; each validates input, calls one service or selector, renders."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

from django.conf import settings
from django.db.models import QuerySet
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from forge_site.api import ApiError
from forge_site.api_views import ERRORS, ErrorOut
from models_registry import selectors as registry_selectors
from models_registry.models import ModelVersion
from rollouts import gateway, selectors, services
from rollouts.api import serializers as s
from rollouts.models import Rollout, RolloutState
from rollouts.requirements import promotion_requirements
from rollouts.services import RolloutError

CONFLICT = {409: OpenApiResponse(ErrorOut, description="the rollout's state does not allow this now")}


@contextmanager
def rollout_errors() -> Iterator[None]:
    """A service's refusal in the API's error shape, keeping its status, code and field."""
    try:
        yield
    except RolloutError as exc:
        raise ApiError(exc.message, code=exc.code, field=exc.field, status_code=exc.status) from exc


def _rollout_or_404(rollout_id: int) -> Rollout:
    try:
        return selectors.rollout_get(rollout_id=rollout_id)
    except Rollout.DoesNotExist as exc:
        raise ApiError(f"There is no rollout #{rollout_id}.", code="not_found", status_code=404) from exc


def _detail(rollout_id: int, code: int = 200) -> Response:
    return Response(s.rollout_detail_out(_rollout_or_404(rollout_id)), status=code)


def _payload(serializer_class: type, request: Request) -> dict[str, Any]:
    data = serializer_class(data=request.data)
    data.is_valid(raise_exception=True)
    return dict(data.validated_data)


@extend_schema_view(
    get=extend_schema(
        summary="Rollouts, newest first",
        parameters=[
            OpenApiParameter("state", str, description="a state, or active (running, paused, awaiting approval)"),
            OpenApiParameter("model", str, description="a model's name"),
        ],
    )
)
class RolloutListCreateView(generics.ListAPIView):
    """GET: rollouts with their split and statistics. POST: draft a rollout of a challenger against the champion."""

    required_actions = {"GET": "rollout.view", "POST": "rollout.manage"}
    serializer_class = s.RolloutOut

    def get_queryset(self) -> QuerySet[Rollout]:
        params = self.request.query_params
        return selectors.rollout_list(state=params.get("state", ""), model_name=params.get("model", ""))

    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        page = cast(list[Rollout], self.paginate_queryset(self.get_queryset()))
        traffic = selectors.traffic_windows(rollouts=page)
        rows = []
        for rollout in page:
            # The list leaves out the drift and fairness verdicts (a call per rollout); the detail has them.
            analysis = selectors.rollout_analysis(rollout=rollout, traffic=traffic[rollout.pk], verdicts={})
            rows.append(s.rollout_out(rollout, statistics=analysis.to_json()))
        return self.get_paginated_response(rows)

    @extend_schema(
        summary="Draft a rollout",
        request=s.RolloutCreateInput,
        responses={
            201: s.RolloutDetailOut,
            409: OpenApiResponse(ErrorOut, description="the model has no champion"),
            **ERRORS,
        },
    )
    def post(self, request: Request) -> Response:
        data = _payload(s.RolloutCreateInput, request)
        model = registry_selectors.model_by_name(data.pop("model"))
        if model is None:
            raise ApiError("There is no such model.", code="not_found", field="model", status_code=404)
        version = data.pop("challenger")
        challenger = ModelVersion.objects.filter(model=model, version=version).first()
        if challenger is None:
            raise ApiError(f"{model.name} has no version {version!r}.", field="challenger", code="not_found")
        with rollout_errors():
            rollout = services.rollout_create(model=model, challenger=challenger, actor=request.user, **data)
        return _detail(rollout.pk, status.HTTP_201_CREATED)


class RolloutDetailView(APIView):
    required_actions = {"GET": "rollout.view"}

    @extend_schema(
        summary="A rollout: state, split, per-arm statistics, SRM, tests, guardrails, recommendation, promotion",
        responses={200: s.RolloutDetailOut, **ERRORS},
    )
    def get(self, request: Request, rollout_id: int) -> Response:
        return _detail(rollout_id)


class _TransitionView(APIView):
    """A POST that moves a rollout from one state to another through one service."""

    input_class: type = s.ReasonInput

    def act(self, rollout: Rollout, user: Any, data: dict[str, Any]) -> None:
        raise NotImplementedError

    def post(self, request: Request, rollout_id: int) -> Response:
        rollout = _rollout_or_404(rollout_id)
        data = _payload(self.input_class, request)
        with rollout_errors():
            self.act(rollout, request.user, data)
        return _detail(rollout_id)


def _transition(summary: str, input_class: type) -> Any:
    return extend_schema(
        summary=summary, request=input_class, responses={200: s.RolloutDetailOut, **CONFLICT, **ERRORS}
    )


class RolloutStartView(_TransitionView):
    required_actions = {"POST": "rollout.manage"}

    @_transition("Start a draft: the first step's share goes to the challenger", s.ReasonInput)
    def post(self, request: Request, rollout_id: int) -> Response:
        return super().post(request, rollout_id)

    def act(self, rollout: Rollout, user: Any, data: dict[str, Any]) -> None:
        services.rollout_start(rollout=rollout, actor=user)


class RolloutAdvanceView(_TransitionView):
    required_actions = {"POST": "rollout.manage"}
    input_class = s.AdvanceInput

    @_transition("Advance to the next step (before its minimums only with override_reason)", s.AdvanceInput)
    def post(self, request: Request, rollout_id: int) -> Response:
        return super().post(request, rollout_id)

    def act(self, rollout: Rollout, user: Any, data: dict[str, Any]) -> None:
        services.rollout_advance(rollout=rollout, actor=user, override_reason=data["override_reason"])


class RolloutPauseView(_TransitionView):
    required_actions = {"POST": "rollout.control"}

    @_transition("Pause: everyone goes to the champion until resumed", s.ReasonInput)
    def post(self, request: Request, rollout_id: int) -> Response:
        return super().post(request, rollout_id)

    def act(self, rollout: Rollout, user: Any, data: dict[str, Any]) -> None:
        services.rollout_pause(rollout=rollout, actor=user, reason=data["reason"])


class RolloutResumeView(_TransitionView):
    required_actions = {"POST": "rollout.control"}

    @_transition("Resume a paused rollout at its current step", s.ReasonInput)
    def post(self, request: Request, rollout_id: int) -> Response:
        return super().post(request, rollout_id)

    def act(self, rollout: Rollout, user: Any, data: dict[str, Any]) -> None:
        services.rollout_resume(rollout=rollout, actor=user)


class RolloutRollbackView(_TransitionView):
    required_actions = {"POST": "rollout.control"}
    input_class = s.RollbackInput

    @_transition(
        "Roll back: the challenger gets 0% at once (after a promotion, the champion moves back)", s.RollbackInput
    )
    def post(self, request: Request, rollout_id: int) -> Response:
        return super().post(request, rollout_id)

    def act(self, rollout: Rollout, user: Any, data: dict[str, Any]) -> None:
        services.rollout_rollback(rollout=rollout, actor=user, reason=data["reason"])


class RolloutAbortView(_TransitionView):
    required_actions = {"POST": "rollout.manage"}

    @_transition("Abort a draft that will never run", s.ReasonInput)
    def post(self, request: Request, rollout_id: int) -> Response:
        return super().post(request, rollout_id)

    def act(self, rollout: Rollout, user: Any, data: dict[str, Any]) -> None:
        services.rollout_abort(rollout=rollout, actor=user, reason=data["reason"])


class PromotionView(APIView):
    required_actions = {"GET": "rollout.view", "POST": "promotion.request"}

    @extend_schema(
        summary="The latest promotion request (or null) and the requirements as they stand now",
        responses={200: s.PromotionStateOut, **ERRORS},
    )
    def get(self, request: Request, rollout_id: int) -> Response:
        rollout = _rollout_or_404(rollout_id)
        latest = selectors.promotion_history(rollout=rollout).first()
        requirements = [r.to_json() for r in promotion_requirements(rollout=rollout)]
        return Response({"request": s.promotion_out(latest), "requirements": requirements})

    @extend_schema(
        summary="Ask for the challenger's promotion (a manager decides)",
        request=s.PromotionInput,
        responses={201: s.PromotionOut, **CONFLICT, **ERRORS},
    )
    def post(self, request: Request, rollout_id: int) -> Response:
        rollout = _rollout_or_404(rollout_id)
        data = _payload(s.PromotionInput, request)
        with rollout_errors():
            promotion = services.promotion_request(rollout=rollout, actor=request.user, comment=data["comment"])
        return Response(s.promotion_out(promotion), status=status.HTTP_201_CREATED)


class PromotionApproveView(APIView):
    required_actions = {"POST": "promotion.decide"}

    @extend_schema(
        summary="Approve: the champion alias moves to the challenger (never the requester's own request)",
        request=s.DecisionInput,
        responses={200: s.PromotionOut, **CONFLICT, **ERRORS},
    )
    def post(self, request: Request, rollout_id: int) -> Response:
        rollout = _rollout_or_404(rollout_id)
        data = _payload(s.DecisionInput, request)
        with rollout_errors():
            promotion = services.promotion_approve(rollout=rollout, actor=request.user, **data)
        return Response(s.promotion_out(promotion))


class PromotionRejectView(APIView):
    required_actions = {"POST": "promotion.decide"}

    @extend_schema(
        summary="Reject with a comment: the rollout runs on",
        request=s.PromotionInput,
        responses={200: s.PromotionOut, **CONFLICT, **ERRORS},
    )
    def post(self, request: Request, rollout_id: int) -> Response:
        rollout = _rollout_or_404(rollout_id)
        data = _payload(s.PromotionInput, request)
        with rollout_errors():
            promotion = services.promotion_reject(rollout=rollout, actor=request.user, comment=data["comment"])
        return Response(s.promotion_out(promotion))


class AssignView(APIView):
    """For a gateway that serves the models itself: the arm of one request, without running a model."""

    required_actions = {"GET": "rollout.serve"}
    throttle_scope = "machine"

    @extend_schema(
        summary="The arm for a unit (sticky), or at random without one",
        parameters=[OpenApiParameter("unit", str, description="the unit id (at most 1,024 bytes of UTF-8)")],
        responses={200: s.AssignOut, **CONFLICT, **ERRORS},
    )
    def get(self, request: Request, rollout_id: int) -> Response:
        rollout = _rollout_or_404(rollout_id)
        with rollout_errors():
            result = services.rollout_assign(rollout=rollout, unit=request.query_params.get("unit") or None)
        return Response(
            {
                "rollout": result.rollout_id,
                "arm": result.arm,
                "version": result.version,
                "assignment": result.assignment,
                "request_id": result.request_id,
                "unit_key": result.unit_key,
                "challenger_share": result.challenger_share,
            }
        )


class OutcomesView(APIView):
    required_actions = {"POST": "rollout.serve"}
    throttle_scope = "machine"

    @extend_schema(
        summary="Record a served request's outcome (success, or a value)",
        request=s.OutcomeInput,
        responses={
            201: s.OutcomeOut,
            200: OpenApiResponse(s.OutcomeOut, description="the same outcome was recorded before"),
            409: OpenApiResponse(ErrorOut, description="the request already has another outcome"),
            **ERRORS,
        },
    )
    def post(self, request: Request, rollout_id: int) -> Response:
        rollout = _rollout_or_404(rollout_id)
        if rollout.state == RolloutState.DRAFT:
            raise ApiError(
                f"Rollout #{rollout_id} has not started: it served nothing.", code="not_started", status_code=409
            )
        data = _payload(s.OutcomeInput, request)
        with rollout_errors():
            outcome, created = services.outcome_record(rollout=rollout, **data)
        body = {
            "request_id": outcome.request_id,
            "rollout": rollout.pk,
            "arm": outcome.arm,
            "success": outcome.success,
            "value": outcome.value,
            "recorded": created,
        }
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class PredictView(APIView):
    """Predict runs on the serving process, never in the console's web process (which never loads an artifact)."""

    required_actions = {"POST": "rollout.serve"}
    throttle_scope = "machine"

    @extend_schema(
        summary="Not here: predict is served by the serving process at the rollout's predict_url",
        request=None,
        responses={421: OpenApiResponse(ErrorOut, description="send it to predict_url"), **ERRORS},
    )
    def post(self, request: Request, rollout_id: int) -> Response:
        rollout = _rollout_or_404(rollout_id)
        url = services.predict_url(rollout)
        response = Response(
            {
                "error": {
                    "code": "served_elsewhere",
                    "message": f"Predict is served by Forge's serving process, not the console: POST to {url}",
                    "field": None,
                }
            },
            status=421,
        )
        response["Link"] = f'<{url}>; rel="alternate"'
        return response


HOST_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


class GatewayView(APIView):
    """The current split as a gateway's configuration (Istio weights or KServe canaryTrafficPercent)."""

    required_actions = {"GET": "rollout.view"}

    @extend_schema(
        summary="The current split for a gateway: an Istio VirtualService or a KServe InferenceService (JSON)",
        parameters=[
            OpenApiParameter("target", str, enum=list(gateway.FORMATS), description="istio (default) or kserve"),
            OpenApiParameter(
                "host", str, pattern=HOST_NAME.pattern, description="the service host (Istio; default: the model)"
            ),
        ],
        responses={
            200: inline_serializer(
                "GatewayOut",
                {
                    "format": serializers.ChoiceField(choices=gateway.FORMATS),
                    "share": serializers.FloatField(),
                    "rounded": serializers.BooleanField(),
                    "config": serializers.DictField(),
                },
            ),
            **ERRORS,
        },
    )
    def get(self, request: Request, rollout_id: int) -> Response:
        rollout = _rollout_or_404(rollout_id)
        # `target`, not `format`: DRF reads ?format= as the choice of renderer.
        fmt = request.query_params.get("target") or "istio"
        if fmt not in gateway.FORMATS:
            raise ApiError(f"target is one of {', '.join(gateway.FORMATS)}.", field="target", code="invalid")
        host = request.query_params.get("host") or None
        if host is not None and not HOST_NAME.match(host):
            raise ApiError(
                "host is a DNS name in lower case (a Kubernetes service host).", field="host", code="invalid"
            )
        split = gateway.Split(
            rollout_id=rollout.pk,
            model=rollout.model.name,
            state=rollout.state,
            champion=rollout.champion.version,
            challenger=rollout.challenger.version,
            champion_sha256=rollout.champion.sha256,
            challenger_sha256=rollout.challenger.sha256,
            share=services.traffic.routed_share(rollout),
        )
        return Response(
            gateway.gateway_config(split, fmt=fmt, storage_uri=settings.FORGE_GATEWAY_STORAGE_URI, host=host)
        )
