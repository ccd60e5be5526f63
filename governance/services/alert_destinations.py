"""Alert destinations: create, change and delete them (audited), with their URLs held to the address policy and
their secrets sealed. What a person sees afterwards is `url_display` and `secret_hint`, never the secret."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from forge_site.audit import audit_record
from governance.alerting.addresses import (
    AddressPolicy,
    AddressRefused,
    IPAddress,
    Target,
    check_url,
    mask_url,
    system_resolver,
)
from governance.alerting.secrets import SecretBox, derived_key, hint
from governance.models import AlertDelivery, AlertDestination, DeliveryStatus, DestinationKind, Severity
from models_registry.models import RegisteredModel

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
MIN_SIGNING_SECRET = 16
MAX_SECRET = 512
NAME_MAX = 100


class AlertConfigError(Exception):
    """A refused alert rule or destination: `field` names the input at fault; `status` is what the API answers
    (400 malformed, 409 a name that is taken, 422 valid field by field but not allowed, such as a URL to a private
    address or a model that does not exist)."""

    def __init__(self, message: str, *, field: str | None = None, code: str = "invalid", status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code
        self.status = status


# --- the edge of the world: DNS, keys ------------------------------------------------------------------------------


def resolve_host(host: str, port: int) -> list[str]:
    """The addresses `host` has now (DNS, with FORGE_ALERT_DNS_TIMEOUT_S as its deadline)."""
    return system_resolver(settings.FORGE_ALERT_DNS_TIMEOUT_S)(host, port)


def address_policy() -> AddressPolicy:
    return _policy(settings.FORGE_ALERT_ALLOW_LOOPBACK, tuple(settings.FORGE_ALERT_ALLOWED_NETWORKS))


@functools.lru_cache(maxsize=8)
def _policy(allow_loopback: bool, networks: tuple[str, ...]) -> AddressPolicy:
    return AddressPolicy.from_settings(allow_loopback=allow_loopback, allowed_networks=networks)


def url_check(url: str) -> tuple[Target, list[IPAddress]]:
    """The URL's target and checked addresses, resolved now; AddressRefused says why not."""
    return check_url(url, address_policy(), lambda host, port: resolve_host(host, port))


def secret_box() -> SecretBox:
    keys = tuple(settings.FORGE_SECRETS_KEYS) or (derived_key(settings.SECRET_KEY).decode(),)
    return _box(keys)


@functools.lru_cache(maxsize=4)
def _box(keys: tuple[str, ...]) -> SecretBox:
    return SecretBox(keys)


# --- validation -----------------------------------------------------------------------------------------------------


def _checked_url(url: str) -> str:
    try:
        url_check(url)
    except AddressRefused as exc:
        raise AlertConfigError(exc.message, field="url", code="url_not_allowed", status=422) from exc
    return url


def _checked_secret(kind: str, value: str) -> str:
    field = "routing_key" if kind == DestinationKind.PAGERDUTY else "signing_secret"
    if not isinstance(value, str) or not value:
        raise AlertConfigError(f"Give the {field.replace('_', ' ')}.", field=field, code="required")
    if len(value) > MAX_SECRET or any(not (" " < c <= "~") for c in value):
        raise AlertConfigError(
            f"The {field.replace('_', ' ')} must be 1 to {MAX_SECRET} printable ASCII characters without spaces.",
            field=field,
        )
    if kind == DestinationKind.WEBHOOK and len(value) < MIN_SIGNING_SECRET:
        raise AlertConfigError(
            f"The signing secret must be at least {MIN_SIGNING_SECRET} characters (a random 32 will do).", field=field
        )
    return value


def _checked_name(name: str, *, exclude_pk: int | None = None) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > NAME_MAX or name != name.strip():
        raise AlertConfigError(
            f"The name must be 1 to {NAME_MAX} characters, without spaces at either end.", field="name"
        )
    taken = AlertDestination.objects.filter(name__iexact=name)
    if exclude_pk is not None:
        taken = taken.exclude(pk=exclude_pk)
    if taken.exists():
        raise AlertConfigError(f"A destination named {name!r} exists.", field="name", code="duplicate", status=409)
    return name


def models_named(names: Iterable[str], *, field: str = "models") -> list[RegisteredModel]:
    """The registered models of these names (422 naming the first unknown one)."""
    wanted = list(dict.fromkeys(names))
    found = {m.name: m for m in RegisteredModel.objects.filter(name__in=wanted)}
    for name in wanted:
        if name not in found:
            raise AlertConfigError(f"There is no model named {name!r}.", field=field, code="not_found", status=422)
    return [found[name] for name in wanted]


def _snapshot(destination: AlertDestination) -> dict[str, Any]:
    return {
        "name": destination.name,
        "kind": destination.kind,
        "enabled": destination.enabled,
        "url": destination.url_display,
        "secret": destination.secret_hint if destination.secret_sealed else None,
        "min_severity": destination.min_severity,
        "models": sorted(m.name for m in destination.model_scope.all()),
    }


def _seal_url(destination: AlertDestination, url: str) -> None:
    destination.url_sealed = secret_box().seal(url)
    destination.url_display = mask_url(url)


def _seal_secret(destination: AlertDestination, secret: str) -> None:
    destination.secret_sealed = secret_box().seal(secret)
    destination.secret_hint = hint(secret) if destination.kind == DestinationKind.PAGERDUTY else "set"


# --- services -------------------------------------------------------------------------------------------------------


def alert_destination_create(
    *,
    actor: Any,
    name: str,
    kind: str,
    url: str = "",
    routing_key: str = "",
    signing_secret: str = "",
    enabled: bool = True,
    min_severity: str = Severity.INFO,
    models: Iterable[RegisteredModel] = (),
) -> AlertDestination:
    """Add a destination: a Slack-compatible webhook (url), PagerDuty (routing_key; url defaults to the Events API
    v2 endpoint) or a signed JSON webhook (url and signing_secret)."""
    if kind not in DestinationKind.values:
        raise AlertConfigError(f"kind must be one of {', '.join(DestinationKind.values)}.", field="kind")
    if min_severity not in Severity.values:
        raise AlertConfigError(f"min_severity must be one of {', '.join(Severity.values)}.", field="min_severity")
    name = _checked_name(name)
    if kind == DestinationKind.PAGERDUTY and not url:
        url = PAGERDUTY_EVENTS_URL
    if not url:
        raise AlertConfigError("Give the destination's URL.", field="url", code="required")
    secret = ""
    if kind != DestinationKind.SLACK:
        secret = _checked_secret(kind, routing_key if kind == DestinationKind.PAGERDUTY else signing_secret)
    _checked_url(url)
    destination = AlertDestination(
        name=name, kind=kind, enabled=enabled, min_severity=min_severity, created_by=_user(actor)
    )
    _seal_url(destination, url)
    if secret:
        _seal_secret(destination, secret)
    try:
        with transaction.atomic():
            destination.save()
            destination.model_scope.set(list(models))
            audit_record(actor=actor, action="alert_destination.create", obj=destination, after=_snapshot(destination))
    except IntegrityError as exc:  # the same name saved by another request a moment ago
        raise AlertConfigError(
            f"A destination named {name!r} exists.", field="name", code="duplicate", status=409
        ) from exc
    return destination


def alert_destination_update(
    *,
    destination: AlertDestination,
    actor: Any,
    name: str | None = None,
    enabled: bool | None = None,
    url: str | None = None,
    routing_key: str | None = None,
    signing_secret: str | None = None,
    min_severity: str | None = None,
    models: Iterable[RegisteredModel] | None = None,
) -> AlertDestination:
    """Change what is given; a secret or URL left out keeps its stored value (secrets are write-only)."""
    kind = destination.kind
    if routing_key is not None and kind != DestinationKind.PAGERDUTY:
        raise AlertConfigError(
            f"A {kind} destination has no routing key.", field="routing_key", code="not_applicable", status=422
        )
    if signing_secret is not None and kind != DestinationKind.WEBHOOK:
        raise AlertConfigError(
            f"A {kind} destination has no signing secret.", field="signing_secret", code="not_applicable", status=422
        )
    if min_severity is not None and min_severity not in Severity.values:
        raise AlertConfigError(f"min_severity must be one of {', '.join(Severity.values)}.", field="min_severity")
    with transaction.atomic():
        locked = AlertDestination.objects.select_for_update().get(pk=destination.pk)
        before = _snapshot(locked)
        changed: dict[str, bool] = {}
        if name is not None and name != locked.name:
            locked.name = _checked_name(name, exclude_pk=locked.pk)
        if enabled is not None:
            locked.enabled = enabled
        if min_severity is not None:
            locked.min_severity = min_severity
        if url is not None:
            _seal_url(locked, _checked_url(url))
            changed["url_changed"] = True
        secret = routing_key if kind == DestinationKind.PAGERDUTY else signing_secret
        if secret is not None:
            _seal_secret(locked, _checked_secret(kind, secret))
            changed["secret_changed"] = True
        try:
            with transaction.atomic():
                locked.save()
        except IntegrityError as exc:
            raise AlertConfigError(
                f"A destination named {name!r} exists.", field="name", code="duplicate", status=409
            ) from exc
        if models is not None:
            locked.model_scope.set(list(models))
        audit_record(
            actor=actor,
            action="alert_destination.update",
            obj=locked,
            before=before,
            after={**_snapshot(locked), **changed},
        )
    return locked


def alert_destination_delete(*, destination: AlertDestination, actor: Any) -> None:
    """Delete it; deliveries still waiting are cancelled, and past deliveries keep its name."""
    with transaction.atomic():
        locked = AlertDestination.objects.select_for_update().get(pk=destination.pk)
        before = _snapshot(locked)
        AlertDelivery.objects.filter(destination=locked, status=DeliveryStatus.PENDING).update(
            status=DeliveryStatus.CANCELLED, finished_at=timezone.now(), last_error="the destination was deleted"
        )
        audit_record(actor=actor, action="alert_destination.delete", obj=locked, before=before)
        locked.delete()


def destination_secrets(destination: AlertDestination) -> tuple[str, str]:
    """The URL and the secret in clear, for sending only (SecretUnreadable when the keys changed)."""
    box = secret_box()
    url = box.open(destination.url_sealed)
    secret = box.open(destination.secret_sealed) if destination.secret_sealed else ""
    return url, secret


def _user(actor: Any) -> Any:
    return actor if getattr(actor, "is_authenticated", False) else None
