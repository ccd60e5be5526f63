"""API tokens: `Authorization: Bearer forge_<prefix>_<secret>`; only a SHA-256 of the whole token is stored."""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from forge_site import throttles
from forge_site.audit import audit_record
from forge_site.compiled import CompiledQuery
from forge_site.models import ApiToken
from forge_site.roles import remember_roles
from forge_site.throttles import client_address, counters

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "forge"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@transaction.atomic
def token_create(
    *, user: AbstractBaseUser, name: str = "", days: int | None = None, actor: Any = None
) -> tuple[ApiToken, str]:
    """Create a token; the plain text is returned once and never stored."""
    prefix = secrets.token_hex(6)
    plain = f"{TOKEN_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    lifetime = settings.FORGE_TOKEN_DEFAULT_DAYS if days is None else days
    expires_at = timezone.now() + timedelta(days=lifetime) if lifetime > 0 else None
    token = ApiToken.objects.create(  # type: ignore[misc]
        user=user, name=name, prefix=prefix, key_hash=_digest(plain), expires_at=expires_at
    )
    audit_record(
        actor=actor or user,
        action="token.create",
        obj=token,
        object_repr=f"token {prefix} for {user.get_username()}",
        after={"user": user.get_username(), "name": name, "expires_at": expires_at},
    )
    return token, plain


@transaction.atomic
def token_revoke(*, token: ApiToken, actor: Any) -> ApiToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_record(actor=actor, action="token.revoke", obj=token, after={"revoked_at": token.revoked_at})
    return token


@functools.cache
def _token_fields() -> tuple[list[str], list[str]]:
    """The columns of a token and of its user, as from_db() takes them."""
    user_model = get_user_model()
    return [f.attname for f in ApiToken._meta.concrete_fields], [f.attname for f in user_model._meta.concrete_fields]


def _token_query(prefix: str) -> QuerySet[Any, Any]:
    token_fields, user_fields = _token_fields()
    return (
        ApiToken.objects.filter(prefix=prefix)
        .order_by()
        .values_list(*token_fields, *(f"user__{name}" for name in user_fields), "user__groups__name")
    )


# One query for the token, its user and the user's groups (one row per group), on every API request: compiled once.
_TOKEN_LOOKUP = CompiledQuery(_token_query)


def _token_get(prefix: str) -> tuple[ApiToken | None, list[str | None]]:
    """The token with this prefix, its user loaded, and the user's group names; (None, []) if there is none."""
    using = ApiToken.objects.db
    rows = _TOKEN_LOOKUP.rows(prefix, using=using)
    if not rows:
        return None, []
    token_fields, user_fields = _token_fields()
    first = rows[0]
    token = ApiToken.from_db(using, token_fields, first[: len(token_fields)])
    token.user = get_user_model().from_db(using, user_fields, first[len(token_fields) : -1])
    return token, [row[-1] for row in rows]


def token_authenticate(plain: str) -> ApiToken:
    parts = plain.split("_")
    if len(parts) < 3 or parts[0] != TOKEN_PREFIX:
        raise exceptions.AuthenticationFailed("Malformed token: expected forge_<prefix>_<secret>.")
    # The permission check that follows needs no query of its own: roles.user_roles reads what is set here.
    token, group_names = _token_get(parts[1])
    if token is None or not hmac.compare_digest(token.key_hash, _digest(plain)):
        raise exceptions.AuthenticationFailed("Invalid token.")
    now = timezone.now()
    if token.revoked_at is not None:
        raise exceptions.AuthenticationFailed("This token was revoked.")
    if token.expires_at is not None and token.expires_at <= now:
        raise exceptions.AuthenticationFailed("This token has expired; create a new one with forge_token.")
    if not token.user.is_active:
        raise exceptions.AuthenticationFailed("This user is inactive.")
    remember_roles(token.user, group_names)
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=5):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


def token_failure_record(request: Request) -> None:
    """Count a failed token authentication per client address. Past FORGE_TOKEN_MAX_FAILURES_PER_ADDRESS in the
    login failure window, further failures from that address answer 429 with Retry-After instead of 401, and the
    address is logged once: a client stuck on a revoked token, or someone trying tokens, shows up in the log.
    Correct tokens from the address are never refused (a shared address must not lock everyone out); tokens are
    256-bit random, so this is about noise, not guessing."""
    address = client_address(request)
    window = settings.FORGE_LOGIN_FAILURE_WINDOW_S
    moment = throttles.now()
    slot = int(moment // window)
    failures = counters.incr(f"token:failures:{address}:{slot}", ttl=window + 1)
    limit = settings.FORGE_TOKEN_MAX_FAILURES_PER_ADDRESS
    if failures is None or failures <= limit:
        return
    if failures == limit + 1:
        logger.warning("%d failed token authentications from %s in %d s", failures, address, window)
    raise exceptions.Throttled(
        wait=(slot + 1) * window - moment,
        detail=f"Too many failed token authentications from your address ({limit} in {window // 60} minutes).",
    )


class BearerTokenAuthentication(BaseAuthentication):
    keyword = b"bearer"

    def authenticate(self, request: Request) -> tuple[Any, ApiToken] | None:
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <token>'.")
        try:
            plain = header[1].decode()
            token = token_authenticate(plain)
        except UnicodeDecodeError as exc:
            token_failure_record(request)
            raise exceptions.AuthenticationFailed("Token contains invalid characters.") from exc
        except exceptions.AuthenticationFailed:
            token_failure_record(request)
            raise
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="forge"'
