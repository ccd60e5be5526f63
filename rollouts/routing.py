"""Sticky, deterministic traffic assignment for a champion/challenger rollout (pure: no Django, no Celery).

A unit (a user, an account, a device: whatever `unit_key` names) is hashed together with the rollout's salt into a
64-bit number, read as a point in [0, 1). The unit goes to the challenger when that point lies below the
challenger's share. Three properties follow, and the tests hold each:

- *Sticky*: the same (salt, unit) always lands on the same point, in every process and after a restart (no
  `hash()`, whose seed changes per process).
- *Monotone*: raising the share only moves units whose point lies between the old and the new share, from the
  champion to the challenger; no unit ever moves back while the share rises. Setting the share to 0 (a pause, a
  guardrail breach) sends everyone to the champion, and restoring it puts every unit back where it was.
- *Independent across rollouts*: each rollout has its own salt, so being in one rollout's challenger says nothing
  about another's.

The hash is BLAKE2b (8-byte digest) over salt + unit. The alternatives measured in
benchmarks/rollout_assignment.py: zlib.crc32 is about five times faster but linear, so two rollouts' assignments
of the same unit differ by a constant XOR and are correlated; FNV-1a (GrowthBook's choice) must run byte by byte in
Python and is the slowest; SHA-256 is a little slower than BLAKE2b. All figures are in docs/performance.md.

A request without a unit id is assigned at random with the same share, and its assignment says so
(`sticky=False`). A unit id longer than MAX_UNIT_BYTES (UTF-8) is refused with UnitTooLong rather than hashed:
the hash cost would stay bounded (linear, ~2 µs for 10 kB), but an id that long is almost always a payload passed
by mistake, and it would be carried into every log row of the request.
"""

from __future__ import annotations

import hashlib
import random
import secrets
from typing import NamedTuple

CHAMPION = "champion"
CHALLENGER = "challenger"
ARMS = (CHAMPION, CHALLENGER)

MAX_UNIT_BYTES = 1024
SALT_BYTES = 8
_SCALE = 1 << 64


class UnitTooLong(ValueError):
    """A unit id over MAX_UNIT_BYTES; the API answers 400 with this message."""

    def __init__(self, length: int) -> None:
        super().__init__(
            f"The unit id is {length} bytes long; the limit is {MAX_UNIT_BYTES} bytes (UTF-8). Pass a stable "
            "identifier such as a user or account id, or a hash of a longer key."
        )
        self.length = length


class Assignment(NamedTuple):
    """Where one request goes: the arm, and whether it came from the unit id (sticky) or at random."""

    arm: str
    sticky: bool

    @property
    def assignment(self) -> str:
        return "sticky" if self.sticky else "random"


# Four possible answers, built once: assign() returns one of these instead of allocating per call.
STICKY_CHAMPION = Assignment(CHAMPION, True)
STICKY_CHALLENGER = Assignment(CHALLENGER, True)
RANDOM_CHAMPION = Assignment(CHAMPION, False)
RANDOM_CHALLENGER = Assignment(CHALLENGER, False)


def new_salt() -> str:
    """A fresh salt for a rollout (16 hex characters)."""
    return secrets.token_hex(SALT_BYTES)


def share_threshold(challenger_percent: float) -> int:
    """The 64-bit point below which a unit goes to the challenger, for a share in percent (0-100)."""
    if not 0 <= challenger_percent <= 100:
        raise ValueError(f"A challenger share must be between 0 and 100 percent, not {challenger_percent}.")
    return round(challenger_percent / 100 * _SCALE)


def _threshold_bytes(threshold: int) -> bytes:
    # Digests are compared as bytes: for 8-byte strings, lexicographic order is big-endian integer order, and it
    # spares an int conversion per request. 2**64 (a 100% share) needs 9 bytes: ff*8 + 00 sorts after every digest.
    return threshold.to_bytes(8, "big") if threshold < _SCALE else b"\xff" * 8 + b"\x00"


def _unit_bytes(unit: str) -> bytes:
    try:
        data = unit.encode()
    except UnicodeEncodeError:  # a lone surrogate (a query string can carry one): hashed as its raw code point
        data = unit.encode("utf-8", "surrogatepass")
    if len(data) > MAX_UNIT_BYTES:
        raise UnitTooLong(len(data))
    return data


def unit_point(salt: str, unit: str) -> int:
    """The unit's 64-bit point for this salt (what assign() compares against the share's threshold)."""
    digest = hashlib.blake2b(salt.encode() + _unit_bytes(unit), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def unit_position(salt: str, unit: str) -> float:
    """The unit's point as a fraction in [0, 1): it is in the challenger while the share exceeds this."""
    return unit_point(salt, unit) / _SCALE


class Router:
    """Assigns requests of one rollout at one challenger share; build a new one when the share changes (cheap)."""

    __slots__ = ("_random", "_salt", "_threshold", "_threshold_bytes", "challenger_percent", "salt")

    def __init__(self, salt: str, challenger_percent: float, *, rng: random.Random | None = None) -> None:
        if not salt:
            raise ValueError("A rollout's salt must not be empty.")
        self.salt = salt
        self.challenger_percent = challenger_percent
        self._salt = salt.encode()
        self._threshold = share_threshold(challenger_percent)
        self._threshold_bytes = _threshold_bytes(self._threshold)
        self._random = (rng or random.Random()).random

    def assign(self, unit: str | None, *, _blake2b=hashlib.blake2b) -> Assignment:
        """The arm for one request. `unit` None or "" means no unit id: a random draw at the same share.

        This is the serving hot path (goal: a million calls a second): hashlib bound as a default argument, the
        unit's bytes inlined from _unit_bytes, no allocation but the digest.
        """
        if not unit:
            if self._random() * _SCALE < self._threshold:
                return RANDOM_CHALLENGER
            return RANDOM_CHAMPION
        try:
            data = unit.encode()
        except UnicodeEncodeError:
            data = unit.encode("utf-8", "surrogatepass")
        if len(data) > MAX_UNIT_BYTES:
            raise UnitTooLong(len(data))
        if _blake2b(self._salt + data, digest_size=8).digest() < self._threshold_bytes:
            return STICKY_CHALLENGER
        return STICKY_CHAMPION

    def assign_with_point(self, unit: str | None) -> tuple[Assignment, int | None]:
        """assign(), and the unit's point as a signed 64-bit integer (None without a unit): what a writer records
        once per unit so the sample-ratio check can count units, not requests (rollouts.models.RolloutUnit)."""
        if not unit:
            return self.assign(None), None
        digest = hashlib.blake2b(self._salt + _unit_bytes(unit), digest_size=8).digest()
        arm = STICKY_CHALLENGER if digest < self._threshold_bytes else STICKY_CHAMPION
        return arm, int.from_bytes(digest, "big", signed=True)

    def assign_many(self, units: list[str]) -> list[str]:
        """Arms for many unit ids (a gateway's batch, a simulation): the same answers as assign(), in one loop."""
        salt, threshold, blake2b = self._salt, self._threshold_bytes, hashlib.blake2b
        arms: list[str] = []
        append = arms.append
        for unit in units:
            if not unit:
                raise ValueError("assign_many takes unit ids; assign a request without one through assign(None).")
            digest = blake2b(salt + _unit_bytes(unit), digest_size=8).digest()
            append(CHALLENGER if digest < threshold else CHAMPION)
        return arms
