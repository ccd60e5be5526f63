"""Request ids that carry their rollout, arm and minute, signed (pure: no Django).

A served (or assigned) request gets an id such as `r12-b-1c0a3f2-5e8d1f0a9b3c-8f14e45fceea167a`: the rollout
(12), the arm (a champion, b challenger), the minute it was served (Unix minutes, hex), a random nonce, and a
keyed BLAKE2b MAC of all that. An outcome posted later names only the request id, and the id alone says where
it belongs, so an outcome never waits for the request's log row; the MAC means an id Forge did not issue is
refused instead of being counted. Cost: about 2 µs per id.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import NamedTuple

ARM_CODES = {"champion": "a", "challenger": "b"}
ARMS_BY_CODE = {code: arm for arm, code in ARM_CODES.items()}
MAX_LENGTH = 80


class IssuedRequest(NamedTuple):
    rollout_id: int
    arm: str
    minute: int  # Unix time // 60


def signing_key(secret: str) -> bytes:
    """The MAC key, derived from the deployment's SECRET_KEY (the serving process shares it)."""
    return hashlib.blake2b(secret.encode(), digest_size=32, person=b"forge-request-id").digest()


def _mac(key: bytes, body: str) -> str:
    return hashlib.blake2b(body.encode(), digest_size=8, key=key).hexdigest()


def issue(key: bytes, rollout_id: int, arm: str, minute: int) -> str:
    body = f"r{rollout_id}-{ARM_CODES[arm]}-{minute:x}-{secrets.token_hex(6)}"
    return f"{body}-{_mac(key, body)}"


def parse(key: bytes, request_id: str) -> IssuedRequest | None:
    """What a request id says, or None when it is not one Forge issued (malformed, or its MAC does not match)."""
    if not isinstance(request_id, str) or len(request_id) > MAX_LENGTH:
        return None
    body, _, mac = request_id.rpartition("-")
    parts = body.split("-")
    if len(parts) != 4 or not parts[0].startswith("r") or parts[1] not in ARMS_BY_CODE:
        return None
    if not hmac.compare_digest(_mac(key, body), mac):
        return None
    try:
        return IssuedRequest(int(parts[0][1:]), ARMS_BY_CODE[parts[1]], int(parts[2], 16))
    except ValueError:
        return None
