"""What the serving process knows of rollouts and tokens, read once and refreshed cheaply.

A rollout's configuration (state, share, salt, the two versions and their input specs) is read once per process and
kept; at most every FORGE_SERVING_REFRESH_MS one thread asks the database for the rollout's revision (a one-row
read of an indexed key) and the versions' usability, and reloads only when they changed. Every change a person or
the minute check makes bumps `Rollout.revision` (rollouts.services.common), so a pause, an advance or a guardrail
rollback reaches every serving process within that interval.

Tokens are verified as the API verifies them (forge_site.tokens.token_authenticate) and the verdict, with the
user's right to `rollout.serve`, is trusted for FORGE_SERVING_TOKEN_CACHE_S: a revoked token stops working within
that time (docs/operations.md).
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.db import close_old_connections
from rest_framework.exceptions import AuthenticationFailed

from forge_site.roles import user_can
from forge_site.tokens import token_authenticate
from models_registry.input_spec import InputDecl, InputSpecError, parse_input_spec
from models_registry.models import ModelVersion
from rollouts.models import SERVING_STATES, Rollout, RolloutState
from rollouts.routing import Router

ROUTING_STATES = (*SERVING_STATES, RolloutState.PAUSED)


@dataclass(frozen=True)
class ServedVersion:
    """One arm's version as the serving process needs it; `refusal` says why it cannot be served (else empty)."""

    pk: int
    version: str
    label: str
    sha256: str
    artifact: str
    decls: list[InputDecl]
    refusal: str


@dataclass(frozen=True)
class RolloutConfig:
    rollout_id: int
    revision: int
    fingerprint: tuple[Any, ...]
    model_name: str
    state: str
    refusal: str  # why it routes no traffic (draft, ended), else empty
    share: float
    router: Router
    champion: ServedVersion
    challenger: ServedVersion
    unit_key: str


def _usable_fields() -> list[str]:
    names = {field.name for field in ModelVersion._meta.get_fields()}
    fields = ["revision", "state", "champion__status", "challenger__status"]
    if "retired_at" in names:
        fields += ["champion__retired_at", "challenger__retired_at", "model__retired_at"]
    return fields


def _served_version(version: ModelVersion) -> ServedVersion:
    label = f"{version.model.name} {version.version}"
    refusal = ""
    unusable = getattr(version, "unusable_reason", None)
    if unusable is not None:
        refusal = unusable()
    elif version.status != "ready":
        refusal = f"{label} is {version.status}, not ready"
    decls: list[InputDecl] = []
    if not refusal:
        try:
            decls = parse_input_spec(version.input_spec) if version.input_spec else []
        except InputSpecError as exc:
            refusal = f"{label} has an input spec that cannot be used: {exc}"
        if not decls and not refusal:
            refusal = f"{label} has no input spec, so its inputs cannot be checked"
    return ServedVersion(version.pk, version.version, label, version.sha256, version.artifact, decls, refusal)


def _load(rollout_id: int, fields: list[str]) -> RolloutConfig | None:
    rollout = (
        Rollout.objects.select_related("model", "champion__model", "challenger__model").filter(pk=rollout_id).first()
    )
    if rollout is None:
        return None
    fingerprint = tuple(Rollout.objects.filter(pk=rollout_id).values_list(*fields).first() or ())
    refusal = ""
    if rollout.state not in ROUTING_STATES:
        refusal = (
            f"Rollout #{rollout.pk} is {rollout.get_state_display().lower()} and routes no traffic; serve the "
            f"champion alias of {rollout.model.name}."
        )
    share = rollout.challenger_share if rollout.state in SERVING_STATES else 0.0
    return RolloutConfig(
        rollout_id=rollout.pk,
        revision=rollout.revision,
        fingerprint=fingerprint,
        model_name=rollout.model.name,
        state=rollout.state,
        refusal=refusal,
        share=share,
        router=Router(rollout.salt, share),
        champion=_served_version(rollout.champion),
        challenger=_served_version(rollout.challenger),
        unit_key=rollout.unit_key,
    )


class RolloutDirectory:
    """Rollout configurations by id, each re-validated at most every `refresh_s` seconds."""

    def __init__(self, refresh_s: float) -> None:
        self.refresh_s = refresh_s
        self._entries: dict[int, tuple[RolloutConfig | None, float]] = {}
        self._lock = threading.Lock()
        self._fields: list[str] | None = None
        self.reloads = 0

    def get(self, rollout_id: int) -> RolloutConfig | None:
        entry = self._entries.get(rollout_id)
        if entry is not None and time.monotonic() - entry[1] < self.refresh_s:
            return entry[0]
        if entry is not None and not self._lock.acquire(blocking=False):
            return entry[0]  # another thread is re-reading: answer from what we have rather than queue behind it
        if entry is None:
            self._lock.acquire()  # nothing to answer from yet: wait for whoever reads it
        try:
            entry = self._entries.get(rollout_id)
            if entry is not None and time.monotonic() - entry[1] < self.refresh_s:
                return entry[0]
            close_old_connections()
            if self._fields is None:
                self._fields = _usable_fields()
            config = entry[0] if entry is not None else None
            if config is not None:
                now_fingerprint = Rollout.objects.filter(pk=rollout_id).values_list(*self._fields).first()
                if now_fingerprint is None or tuple(now_fingerprint) != config.fingerprint:
                    config = None
            if config is None:
                config = _load(rollout_id, self._fields)
                self.reloads += 1
            if len(self._entries) > 10_000:  # ids probed by clients: forget them rather than grow
                self._entries.clear()
            self._entries[rollout_id] = (config, time.monotonic())
            return config
        finally:
            self._lock.release()


class AuthRefused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class Caller:
    """A verified token and whether its user may serve (`rollout.serve`)."""

    user: Any
    token: Any
    allowed: bool
    until: float


class TokenCache:
    """Bearer tokens verified once, then trusted for `ttl_s` seconds (or until they expire, if sooner)."""

    def __init__(self, ttl_s: float, capacity: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self.capacity = capacity
        self._callers: dict[bytes, Caller] = {}

    def caller(self, authorization: str, action: str = "rollout.serve") -> Caller:
        scheme, _, plain = authorization.partition(" ")
        if scheme.lower() != "bearer" or not plain.strip():
            raise AuthRefused(401, "not_authenticated", "Send the API token: Authorization: Bearer <token>.")
        plain = plain.strip()
        key = hashlib.blake2b(plain.encode(errors="surrogatepass"), digest_size=16).digest()
        now = time.monotonic()
        cached = self._callers.get(key)
        if cached is None or cached.until <= now:
            close_old_connections()
            try:
                token = token_authenticate(plain)
            except AuthenticationFailed as exc:
                self._callers.pop(key, None)
                raise AuthRefused(401, "authentication_failed", str(exc.detail)) from exc
            until = now + self.ttl_s
            if token.expires_at is not None:
                until = min(until, now + max(0.0, token.expires_at.timestamp() - time.time()))
            if len(self._callers) >= self.capacity:
                self._callers.clear()
            cached = self._callers[key] = Caller(token.user, token, user_can(token.user, action), until)
        if not cached.allowed:
            raise AuthRefused(403, "permission_denied", f"Your role may not do this ({action}).")
        return cached
