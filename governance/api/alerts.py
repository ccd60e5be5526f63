"""Alerts API under /api/v1/alerts/: the alert history, rules, destinations (secrets write-only), the delivery log,
and sending a test notification. Views validate, call one service or selector, and render."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db.models import QuerySet
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from forge_site.api import ApiError
from forge_site.api_views import ERRORS, ErrorOut
from forge_site.filters import FilterBackend
from forge_site.parsers import JSONParser
from governance.alert_filters import AlertFilter, DeliveryFilter
from governance.api import alert_serializers as s
from governance.models import Alert, AlertDelivery, AlertDestination, AlertRule, DestinationKind
from governance.selectors import alerts as selectors
from governance.services.alert_delivery import alert_destination_test
from governance.services.alert_destinations import (
    AlertConfigError,
    alert_destination_create,
    alert_destination_delete,
    alert_destination_update,
    models_named,
)
from governance.services.alerts import alert_rule_create, alert_rule_delete, alert_rule_update
from models_registry.models import ModelVersion, RegisteredModel

CHANGE_ERRORS: dict[int, Any] = {
    **ERRORS,
    409: OpenApiResponse(ErrorOut, description="the name is taken"),
    422: OpenApiResponse(
        ErrorOut,
        description="valid field by field but not allowed: a URL the address policy refuses (private, link-local, "
        "metadata, loopback, not resolvable), a model or version that does not exist, a field that does not apply",
    ),
}


@contextmanager
def config_errors() -> Iterator[None]:
    try:
        yield
    except AlertConfigError as exc:
        raise ApiError(exc.message, code=exc.code, field=exc.field, status_code=exc.status) from exc


def _not_found(what: str, pk: Any) -> ApiError:
    return ApiError(f"There is no {what} #{pk}.", code="not_found", status_code=404)


# --- alert history --------------------------------------------------------------------------------------------------


@extend_schema_view(get=extend_schema(summary="Alert history, newest first (filter by model, version, status, ...)"))
class AlertListView(generics.ListAPIView):
    required_actions = {"GET": "alerts.view"}
    serializer_class = s.AlertOut
    filter_backends = [FilterBackend]
    filterset_class = AlertFilter

    def get_queryset(self) -> QuerySet[Alert]:
        return selectors.alert_list()


class AlertDetailView(APIView):
    required_actions = {"GET": "alerts.view"}

    @extend_schema(
        summary="One alert, with each delivery and its attempts", responses={200: s.AlertDetailOut, **ERRORS}
    )
    def get(self, request: Request, alert_id: int) -> Response:
        alert = selectors.alert_get(alert_id)
        if alert is None:
            raise _not_found("alert", alert_id)
        return Response(s.AlertDetailOut(alert).data)


# --- rules ----------------------------------------------------------------------------------------------------------


def _rule_targets(data: dict[str, Any], *, current: AlertRule | None = None) -> dict[str, Any]:
    """Model and version names in the request as rows (422 when either does not exist)."""
    fields = dict(data)
    if "model" in fields:
        name = fields["model"]
        fields["model"] = models_named([name], field="model")[0] if name else None
    if "version" in fields:
        label = fields["version"]
        model = fields.get("model", current.model if current else None)
        if label and model is None:
            raise AlertConfigError("A rule on one version names its model too.", field="version", status=422)
        if label:
            assert isinstance(model, RegisteredModel)
            version = ModelVersion.objects.filter(model=model, version=label).first()
            if version is None:
                raise AlertConfigError(
                    f"{model.name} has no version {label!r}.", field="version", code="not_found", status=422
                )
            fields["version"] = version
        else:
            fields["version"] = None
    if "feature" in fields and fields["feature"] is None:
        fields["feature"] = ""
    return fields


def _rule_out(rule_id: int) -> dict[str, Any]:
    rule = selectors.rule_get(rule_id)
    assert rule is not None
    return s.RuleOut(rule).data


@extend_schema_view(get=extend_schema(summary="Alert rules"))
class RuleListCreateView(generics.ListAPIView):
    required_actions = {"GET": "alerts.view", "POST": "alerts.manage"}
    serializer_class = s.RuleOut
    parser_classes = [JSONParser]

    def get_queryset(self) -> QuerySet[AlertRule]:
        return selectors.rule_list()

    @extend_schema(summary="Add an alert rule", request=s.RuleIn, responses={201: s.RuleOut, **CHANGE_ERRORS})
    def post(self, request: Request) -> Response:
        data = s.RuleIn(data=request.data)
        data.is_valid(raise_exception=True)
        with config_errors():
            rule = alert_rule_create(actor=request.user, **_rule_targets(data.validated_data))
        return Response(_rule_out(rule.pk), status=status.HTTP_201_CREATED)


class RuleDetailView(APIView):
    required_actions = {"GET": "alerts.view", "PATCH": "alerts.manage", "DELETE": "alerts.manage"}
    parser_classes = [JSONParser]

    def _rule(self, rule_id: int) -> AlertRule:
        rule = selectors.rule_get(rule_id)
        if rule is None:
            raise _not_found("alert rule", rule_id)
        return rule

    @extend_schema(summary="One alert rule", responses={200: s.RuleOut, **ERRORS})
    def get(self, request: Request, rule_id: int) -> Response:
        return Response(s.RuleOut(self._rule(rule_id)).data)

    @extend_schema(summary="Change an alert rule", request=s.RuleUpdateIn, responses={200: s.RuleOut, **CHANGE_ERRORS})
    def patch(self, request: Request, rule_id: int) -> Response:
        rule = self._rule(rule_id)
        data = s.RuleUpdateIn(data=request.data)
        data.is_valid(raise_exception=True)
        with config_errors():
            alert_rule_update(rule=rule, actor=request.user, **_rule_targets(data.validated_data, current=rule))
        return Response(_rule_out(rule.pk))

    @extend_schema(summary="Delete an alert rule (its open alerts are resolved)", responses={204: None, **ERRORS})
    def delete(self, request: Request, rule_id: int) -> Response:
        alert_rule_delete(rule=self._rule(rule_id), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- destinations ---------------------------------------------------------------------------------------------------


def _destination_out(destination_id: int) -> dict[str, Any]:
    destination = selectors.destination_get(destination_id)
    assert destination is not None
    return s.DestinationOut(destination).data


@extend_schema_view(get=extend_schema(summary="Alert destinations (never their secrets)"))
class DestinationListCreateView(generics.ListAPIView):
    required_actions = {"GET": "alerts.view", "POST": "alerts.manage"}
    serializer_class = s.DestinationOut
    parser_classes = [JSONParser]

    def get_queryset(self) -> QuerySet[AlertDestination]:
        return selectors.destination_list()

    @extend_schema(
        summary="Add a destination: a Slack-compatible webhook, PagerDuty, or a signed JSON webhook",
        request=s.DestinationCreateIn,
        responses={201: s.DestinationOut, **CHANGE_ERRORS},
    )
    def post(self, request: Request) -> Response:
        kind = request.data.get("kind") if isinstance(request.data, dict) else None
        if not isinstance(kind, str) or kind not in s.DESTINATION_INPUTS:
            raise ApiError(
                f"kind must be one of {', '.join(DestinationKind.values)}.", code="invalid_choice", field="kind"
            )
        data = s.DESTINATION_INPUTS[kind](data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        with config_errors():
            fields["models"] = models_named(fields.pop("models", []))
            destination = alert_destination_create(actor=request.user, **fields)
        return Response(_destination_out(destination.pk), status=status.HTTP_201_CREATED)


class DestinationDetailView(APIView):
    required_actions = {"GET": "alerts.view", "PATCH": "alerts.manage", "DELETE": "alerts.manage"}
    parser_classes = [JSONParser]

    @staticmethod
    def _destination(destination_id: int) -> AlertDestination:
        destination = selectors.destination_get(destination_id)
        if destination is None:
            raise _not_found("alert destination", destination_id)
        return destination

    @extend_schema(summary="One alert destination (never its secrets)", responses={200: s.DestinationOut, **ERRORS})
    def get(self, request: Request, destination_id: int) -> Response:
        return Response(s.DestinationOut(self._destination(destination_id)).data)

    @extend_schema(
        summary="Change a destination (a secret left out is kept)",
        request=s.DestinationUpdateIn,
        responses={200: s.DestinationOut, **CHANGE_ERRORS},
    )
    def patch(self, request: Request, destination_id: int) -> Response:
        destination = self._destination(destination_id)
        data = s.DestinationUpdateIn(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        with config_errors():
            if "models" in fields:
                fields["models"] = models_named(fields["models"])
            alert_destination_update(destination=destination, actor=request.user, **fields)
        return Response(_destination_out(destination.pk))

    @extend_schema(
        summary="Delete a destination (waiting deliveries are cancelled; past ones keep its name)",
        responses={204: None, **ERRORS},
    )
    def delete(self, request: Request, destination_id: int) -> Response:
        alert_destination_delete(destination=self._destination(destination_id), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class DestinationTestView(APIView):
    required_actions = {"POST": "alerts.manage"}

    @extend_schema(
        summary="Send a test notification (delivered by a worker; follow the delivery)",
        request=None,
        responses={202: s.DeliveryDetailOut, **ERRORS},
    )
    def post(self, request: Request, destination_id: int) -> Response:
        destination = DestinationDetailView._destination(destination_id)
        delivery = alert_destination_test(destination=destination, actor=request.user)
        found = selectors.delivery_get(delivery.pk)
        response = Response(s.DeliveryDetailOut(found).data, status=status.HTTP_202_ACCEPTED)
        response["Location"] = reverse("api-alert-delivery", kwargs={"delivery_id": delivery.pk})
        return response


# --- deliveries -----------------------------------------------------------------------------------------------------


@extend_schema_view(get=extend_schema(summary="Alert deliveries, newest first"))
class DeliveryListView(generics.ListAPIView):
    required_actions = {"GET": "alerts.view"}
    serializer_class = s.DeliveryOut
    filter_backends = [FilterBackend]
    filterset_class = DeliveryFilter

    def get_queryset(self) -> QuerySet[AlertDelivery]:
        return selectors.delivery_list()


class DeliveryDetailView(APIView):
    required_actions = {"GET": "alerts.view"}

    @extend_schema(
        summary="One delivery: what was sent and every attempt", responses={200: s.DeliveryDetailOut, **ERRORS}
    )
    def get(self, request: Request, delivery_id: int) -> Response:
        delivery = selectors.delivery_get(delivery_id)
        if delivery is None:
            raise _not_found("alert delivery", delivery_id)
        return Response(s.DeliveryDetailOut(delivery).data)
