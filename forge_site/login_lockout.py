"""Login lockout: repeated failed sign-ins lock the username, or the client address, out for a while.

FORGE_LOGIN_MAX_FAILURES_PER_USER failures for one username (any case), or FORGE_LOGIN_MAX_FAILURES_PER_ADDRESS from
one address, within FORGE_LOGIN_FAILURE_WINDOW_S of the first, lock it for FORGE_LOGIN_LOCKOUT_S: every sign-in for
that username or from that address is refused until then, the correct password included (otherwise the lock would
only slow a guesser down, and tell them when they had guessed right). A lock is audited once (`auth.login_locked`);
the attempts refused while it holds are logged, not audited, so a locked-out attacker cannot flood the audit trail.
Usernames that do not exist lock the same way, so the lock tells nothing about which accounts exist.

The counters are in the throttle cache (forge_site.throttles.counters): when it is unreachable, no lock holds and
sign-ins go through (logged), since a lockout that locks everyone out is worse.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.http import HttpRequest

from forge_site import throttles
from forge_site.audit import audit_record
from forge_site.throttles import client_address, counters

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoginLock:
    scope: str  # "account" or "address"
    until: float  # epoch seconds

    @property
    def seconds_left(self) -> int:
        return max(1, math.ceil(self.until - throttles.now()))

    @property
    def message(self) -> str:
        minutes = math.ceil(self.seconds_left / 60)
        when = f"{minutes} minute{'s' if minutes != 1 else ''}"
        if self.scope == "account":
            return f"Too many failed sign-ins for this account. It is locked; try again in {when}."
        return f"Too many failed sign-ins from your network address. Sign-in is locked; try again in {when}."


def _subjects(username: str, address: str) -> list[tuple[str, str, int]]:
    """(scope, cache key part, most failures allowed) for the username and the address of one attempt."""
    user_hash = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
    return [
        ("account", f"user:{user_hash}", settings.FORGE_LOGIN_MAX_FAILURES_PER_USER),
        ("address", f"addr:{address}", settings.FORGE_LOGIN_MAX_FAILURES_PER_ADDRESS),
    ]


def login_lock_status(*, username: str, request: HttpRequest | None) -> LoginLock | None:
    """The lock that refuses this sign-in now, if any (the account's first)."""
    address = client_address(request) if request is not None else ""
    for scope, subject, _ in _subjects(username, address):
        until = counters.get(f"login:lock:{subject}")
        if until is not None and until > throttles.now():
            return LoginLock(scope, float(until))
    return None


def login_failure_record(*, username: str, request: HttpRequest | None) -> LoginLock | None:
    """Count a failed sign-in; lock the username or the address when it reaches its limit (audited once)."""
    address = client_address(request) if request is not None else ""
    window = settings.FORGE_LOGIN_FAILURE_WINDOW_S
    lock_s = settings.FORGE_LOGIN_LOCKOUT_S
    engaged = None
    for scope, subject, limit in _subjects(username, address):
        failures = counters.incr(f"login:failures:{subject}", ttl=window)
        if failures is None or failures < limit:
            continue
        until = math.ceil(throttles.now()) + lock_s
        # Only the request that sets the lock records it (two failures at once must not audit it twice).
        if counters.set_new(f"login:lock:{subject}", until, ttl=lock_s):
            counters.delete(f"login:failures:{subject}")  # after the lock, counting starts again
            audit_record(
                actor=None,
                actor_label=username[:150] or "anonymous",
                action="auth.login_locked",
                object_type="auth.user",
                object_id=username[:150],
                object_repr=username[:150],
                after={
                    "scope": scope,
                    "ip": address or None,
                    "failures": failures,
                    "window_s": window,
                    "locked_until": datetime.fromtimestamp(until, tz=UTC).isoformat(),
                },
            )
            logger.warning("sign-in locked for %s (%s) after %d failures", scope, username or address, failures)
            engaged = engaged or LoginLock(scope, float(until))
    return engaged


def login_success_record(*, username: str) -> None:
    """A correct sign-in clears the username's failures (not the address's: one person's success must not hide
    another's guessing from the same network)."""
    _scope, subject, _limit = _subjects(username, "")[0]
    counters.delete(f"login:failures:{subject}")


def refused_while_locked(request: Any) -> LoginLock | None:
    """The lock the authentication backend found for this request (set there, read by the signal and the form)."""
    return getattr(request, "_forge_login_lock", None)
