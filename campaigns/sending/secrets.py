"""Encryption of ESP credentials at rest (Fernet: AES-128-CBC with an HMAC-SHA256 tag).

The keys come from settings.MAILPATH_ENCRYPTION_KEY, a list: the first key encrypts, every
key decrypts, so an operator rotates by putting a new key first, re-encrypting
(`campaigns.sending.esp.reencrypt_credentials`) and then dropping the old key. When the
setting is empty the key is derived from SECRET_KEY (and SECRET_KEY_FALLBACKS decrypt), so
the embedded default works with no extra setting; changing SECRET_KEY without keeping the
old one in SECRET_KEY_FALLBACKS then makes stored credentials unreadable.
"""

from __future__ import annotations

import base64
import json
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings


class CredentialsUnreadable(Exception):
    """Stored credentials that were altered, or were encrypted with a key no longer set."""


def derive_key(secret_key: str) -> bytes:
    """A Fernet key from Django's SECRET_KEY, separate from every other use of it."""
    raw = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"mailpath", info=b"esp-credentials"
    ).derive(secret_key.encode())
    return base64.urlsafe_b64encode(raw)


def _configured_keys() -> tuple[bytes, ...]:
    keys = [key for key in getattr(settings, "MAILPATH_ENCRYPTION_KEY", None) or [] if key]
    if keys:
        return tuple(key.encode() if isinstance(key, str) else key for key in keys)
    fallbacks = getattr(settings, "SECRET_KEY_FALLBACKS", None) or []
    return tuple(derive_key(secret) for secret in [settings.SECRET_KEY, *fallbacks])


@lru_cache(maxsize=8)
def _fernet(keys: tuple[bytes, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in keys])


def _current() -> MultiFernet:
    return _fernet(_configured_keys())


def encrypt(data: dict[str, Any]) -> str:
    """The dict as JSON, encrypted with the first key; text safe for a TextField."""
    payload = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    return _current().encrypt(payload).decode("ascii")


def decrypt(token: str) -> dict[str, Any]:
    """The dict back. An empty value is an empty dict; a tampered value, or one no
    configured key opens, raises CredentialsUnreadable."""
    if not token:
        return {}
    try:
        payload = _current().decrypt(token.encode("ascii"))
    except (InvalidToken, UnicodeEncodeError) as error:
        raise CredentialsUnreadable(
            "The stored ESP credentials cannot be decrypted: they were altered, or "
            "MAILPATH_ENCRYPTION_KEY (or SECRET_KEY) no longer holds the key they were "
            "encrypted with. Enter the credentials again."
        ) from error
    data = json.loads(payload)
    if not isinstance(data, dict):
        raise CredentialsUnreadable("The stored ESP credentials are not a JSON object.")
    return data


def reencrypt(token: str) -> str:
    """The same secrets encrypted with the current first key (for key rotation)."""
    if not token:
        return token
    try:
        return _current().rotate(token.encode("ascii")).decode("ascii")
    except (InvalidToken, UnicodeEncodeError) as error:
        raise CredentialsUnreadable(
            "The stored ESP credentials cannot be decrypted with any configured key."
        ) from error
