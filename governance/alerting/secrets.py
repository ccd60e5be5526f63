"""Destination secrets (webhook URLs that carry a token, PagerDuty routing keys, HMAC signing secrets) are stored
encrypted with Fernet (AES-128-CBC with HMAC-SHA256, from `cryptography`), so a database dump or backup does not hand
them out. Keys come from FORGE_SECRETS_KEYS (Fernet keys, newest first: the first encrypts, all decrypt, which is how
a key is rotated) or, when that is unset, from a key derived from SECRET_KEY.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class SecretUnreadable(Exception):
    """A stored secret no configured key decrypts (the keys changed): it must be entered again."""


def derived_key(secret_key: str) -> bytes:
    """A Fernet key from Django's SECRET_KEY, bound to this use by HKDF's info string."""
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"forge alert destination secrets v1").derive(
        secret_key.encode()
    )
    return base64.urlsafe_b64encode(raw)


class SecretBox:
    """Encrypts and decrypts short texts with the first of `keys`, decrypting with any of them."""

    def __init__(self, keys: Iterable[bytes | str]) -> None:
        fernets = [Fernet(key) for key in keys]
        if not fernets:
            raise ValueError("SecretBox needs at least one key")
        self._box = MultiFernet(fernets)

    def seal(self, plain: str) -> str:
        return self._box.encrypt(plain.encode()).decode("ascii")

    def open(self, sealed: str) -> str:
        try:
            return self._box.decrypt(sealed.encode("ascii")).decode()
        except (InvalidToken, UnicodeError, ValueError) as exc:
            raise SecretUnreadable(
                "the stored secret cannot be decrypted with the configured keys (SECRET_KEY or FORGE_SECRETS_KEYS "
                "changed); enter it again on the destination"
            ) from exc


def hint(secret: str) -> str:
    """The last four characters, for telling two routing keys apart; nothing of a short secret."""
    return f"…{secret[-4:]}" if len(secret) >= 16 else "…"
