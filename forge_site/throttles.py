"""Rate limits of the API: per token or signed-in user (`user`), per client address (`anon`), and the high-rate
machine paths (`machine`). Each is a fixed-window counter in the shared `throttle` cache, one round trip a request.

DRF's SimpleRateThrottle keeps the time of every request of a key in a list it reads and rewrites on each request,
which costs O(requests per window); at thousands of requests a second from one token that list is the cost. A fixed
window costs one INCR whatever the rate (and may let through up to twice the rate across a window boundary, which
is what a limit that protects capacity can afford). Scopes, numbers and the cache are in docs/operations.md.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.http import HttpRequest
from rest_framework.throttling import BaseThrottle

from forge_site.models import ApiToken

logger = logging.getLogger(__name__)

CACHE_ALIAS = "throttle"
# After a cache error, the counters are skipped for this long instead of paying a connection timeout per request.
RETRY_AFTER_ERROR_S = 5.0
_LOG_EVERY_S = 60.0


def now() -> float:
    """Wall-clock seconds; the windows and the login lockout read time through here (tests move it)."""
    return time.time()


class SharedCounters:
    """Counters and expiring integers in the throttle cache. Every call fails open: when the cache is unreachable
    it answers None (no count, no lock), logs a warning at most once a minute, and leaves the cache alone for a few
    seconds. Rate limits are a protection, and a console that stops answering because Redis did is worse."""

    def __init__(self) -> None:
        self._down_until = 0.0
        self._last_warning = -_LOG_EVERY_S

    def reset(self) -> None:
        """Forget a recent cache error and its warning (the next call tries the cache again)."""
        self._down_until = 0.0
        self._last_warning = -_LOG_EVERY_S

    def _backend(self) -> Any | None:
        if time.monotonic() < self._down_until:
            return None
        return caches[CACHE_ALIAS]

    def _failed(self, exc: Exception) -> None:
        self._down_until = time.monotonic() + RETRY_AFTER_ERROR_S
        if time.monotonic() - self._last_warning >= _LOG_EVERY_S:
            self._last_warning = time.monotonic()
            logger.warning(
                "rate limits and the login lockout are off: the throttle cache is unreachable (%s: %s)",
                type(exc).__name__,
                exc,
            )

    def incr(self, key: str, ttl: int, amount: int = 1) -> int | None:
        """Add `amount` to the counter at `key`, created with a lifetime of `ttl` seconds; the new count."""
        cache = self._backend()
        if cache is None:
            return None
        try:
            redis_client = _redis_client(cache, key)
            if redis_client is not None:
                # One round trip: create the counter with its lifetime if it is new, then count.
                full_key = cache.make_and_validate_key(key)
                pipe = redis_client.pipeline(transaction=False)
                pipe.set(full_key, 0, ex=ttl, nx=True)
                pipe.incr(full_key, amount)
                return int(pipe.execute()[1])
            cache.add(key, 0, ttl)
            try:
                return int(cache.incr(key, amount))
            except ValueError:  # the counter expired between add and incr: this is the first of a new one
                cache.add(key, amount, ttl)
                return amount
        except Exception as exc:  # any cache failure: fail open
            self._failed(exc)
            return None

    def get(self, key: str) -> int | None:
        cache = self._backend()
        if cache is None:
            return None
        try:
            redis_client = _redis_client(cache, key)
            if redis_client is not None:
                value = redis_client.get(cache.make_and_validate_key(key))
                return None if value is None else int(value)
            value = cache.get(key)
            return None if value is None else int(value)
        except Exception as exc:
            self._failed(exc)
            return None

    def set_new(self, key: str, value: int, ttl: int) -> bool:
        """Set `key` unless it exists; True when this call set it (so one caller acts on it)."""
        cache = self._backend()
        if cache is None:
            return False
        try:
            redis_client = _redis_client(cache, key)
            if redis_client is not None:
                return bool(redis_client.set(cache.make_and_validate_key(key), value, ex=ttl, nx=True))
            return bool(cache.add(key, value, ttl))
        except Exception as exc:
            self._failed(exc)
            return False

    def delete(self, key: str) -> None:
        cache = self._backend()
        if cache is None:
            return
        try:
            cache.delete(key)
        except Exception as exc:
            self._failed(exc)


def _redis_client(cache: Any, key: str) -> Any | None:
    """The redis-py client behind Django's RedisCache (for a pipelined INCR), or None for another backend."""
    if not isinstance(cache, RedisCache):
        return None
    return cache._cache.get_client(key, write=True)  # type: ignore[attr-defined]


counters = SharedCounters()


def client_address(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or behind FORGE_TRUSTED_PROXIES proxies the address the outermost of them
    saw (the one it appended to X-Forwarded-For). What a client writes into that header itself is never trusted."""
    proxies = settings.FORGE_TRUSTED_PROXIES
    remote = request.META.get("REMOTE_ADDR", "") or ""
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if proxies <= 0 or not forwarded:
        return remote
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    return hops[-min(proxies, len(hops))] if hops else remote


@dataclass(frozen=True)
class Refusal:
    """What a refused request is told: which limit, and when to come back."""

    scope: str
    who: str
    limit: int
    period_s: int
    wait_s: float

    @property
    def message(self) -> str:
        period = {1: "second", 60: "minute", 3600: "hour", 86400: "day"}.get(self.period_s, f"{self.period_s} s")
        return (
            f"Rate limit reached for {self.who}: {self.limit} requests per {period} ({self.scope} scope). "
            f"Retry in {max(1, math.ceil(self.wait_s))} s."
        )


class FixedWindowThrottle(BaseThrottle):
    """Allow `limit` requests per `period` for each key; the rate is read from FORGE_THROTTLE_RATES[scope]."""

    scope = ""
    who = ""

    def __init__(self) -> None:
        self._wait: float | None = None

    def key(self, request: Any, view: Any) -> str | None:
        """The counter's key, or None when this scope does not apply to the request."""
        raise NotImplementedError

    def allow_request(self, request: Any, view: Any) -> bool:
        rate = settings.FORGE_THROTTLE_RATES.get(self.scope)
        if rate is None:
            return True
        ident = self.key(request, view)
        if ident is None:
            return True
        limit, period = rate
        moment = now()
        window = int(moment // period)
        count = self.count(f"throttle:{self.scope}:{ident}:{window}", ttl=period + 1)
        if count is None or count <= limit:
            return True
        self._wait = (window + 1) * period - moment
        request._forge_refusal = Refusal(self.scope, self.who, limit, period, self._wait)
        return False

    def count(self, key: str, ttl: int) -> int | None:
        """Count this request in the window's counter; the window's count so far (None: cache unreachable)."""
        return counters.incr(key, ttl=ttl)

    def wait(self) -> float | None:
        return self._wait


class BatchedCounts:
    """Window counts that reach the shared cache once per BATCH requests of a key, not once per request.

    Each process adds its requests to a local tally and sends the tally with one INCRBY when it reaches BATCH,
    which answers the window's total over every process. A request is judged on that total plus the local tally,
    so within one process the count is exact; with several processes, each may let through at most BATCH - 1
    requests beyond the limit in a window before its next send shows it the others' counts. At the machine scope's
    thousands of requests a second that is a fraction of a percent, and the check costs a dictionary update under a
    lock instead of a round trip to Redis.
    """

    BATCH = 32

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._local: dict[str, list[int]] = {}  # key -> [unsent requests, total known from the cache]

    def count(self, key: str, ttl: int) -> int | None:
        with self._lock:
            tally = self._local.get(key)
            if tally is None:
                if len(self._local) > 10_000:  # keys of past windows: drop them all, the current ones restart
                    self._local.clear()
                tally = self._local[key] = [0, 0]
            tally[0] += 1
            if tally[0] < self.BATCH and tally[1] > 0:
                return tally[1] + tally[0]
            unsent, tally[0] = tally[0], 0
        # The first request of a key in this process also goes to the cache, so that it starts from the total.
        total = counters.incr(key, ttl=ttl, amount=unsent)
        with self._lock:
            if total is None:
                return None
            tally[1] = max(tally[1], total)
            return tally[1] + tally[0]


def _principal(request: Any) -> str | None:
    if isinstance(request.auth, ApiToken):
        return f"token:{request.auth.pk}"
    user = request.user
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    return None


class UserThrottle(FixedWindowThrottle):
    """`user`: each API token, or each signed-in user without one, on every API view except the machine paths."""

    scope = "user"
    who = "this token or user"

    def key(self, request: Any, view: Any) -> str | None:
        if getattr(view, "throttle_scope", None) == MachineThrottle.scope:
            return None
        return _principal(request)


class AnonThrottle(FixedWindowThrottle):
    """`anon`: requests without credentials, per client address."""

    scope = "anon"
    who = "your address"

    def key(self, request: Any, view: Any) -> str | None:
        if request.user is not None and request.user.is_authenticated:
            return None
        return f"addr:{client_address(request)}"


class MachineThrottle(FixedWindowThrottle):
    """`machine`: the high-rate paths a gateway or a CI job calls (a view opts in with `throttle_scope =
    "machine"`), per token or user, at a rate sized for their throughput goals (FORGE_THROTTLE_MACHINE). Counted
    in batches (BatchedCounts): a round trip to Redis per request would cost more than the serving path may add."""

    scope = "machine"
    who = "this token or user"
    counts = BatchedCounts()

    def count(self, key: str, ttl: int) -> int | None:
        return self.counts.count(key, ttl)

    def key(self, request: Any, view: Any) -> str | None:
        if getattr(view, "throttle_scope", None) != self.scope:
            return None
        return _principal(request)
