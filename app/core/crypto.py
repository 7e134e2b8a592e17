"""Encryption at rest of page credentials, keyed by SECRET_KEY."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Annotated

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from fastapi import Depends, Request

_MAX_CACHED = 4096


class Cipher:
    """Fernet (AES-128-CBC + HMAC) with a key derived from SECRET_KEY by HKDF."""

    def __init__(self, secret_key: str) -> None:
        derived = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=b"otklik", info=b"page-credentials"
        ).derive(secret_key.encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))
        # Plaintexts by token: ingestion decrypts the same page's credentials for every
        # event. A token always decrypts to the same text, so this is never stale.
        self._plain: dict[str, str] = {}

    def encrypt(self, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        return self._fernet.encrypt(value.encode()).decode()

    def decrypt(self, value: str | None) -> str | None:
        if value is None:
            return None
        plain = self._plain.get(value)
        if plain is not None:
            return plain
        try:
            plain = self._fernet.decrypt(value.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("credential cannot be decrypted: was SECRET_KEY changed?") from exc
        if len(self._plain) >= _MAX_CACHED:
            self._plain.clear()
        self._plain[value] = plain
        return plain


def hash_token(token: str) -> str:
    """API tokens and session ids are long random strings: a plain SHA-256 suffices."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(prefix: str = "otk") -> str:
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def get_cipher(request: Request) -> Cipher:
    """The application's cipher (built once from the secret key in `create_app`)."""
    cipher: Cipher = request.app.state.cipher
    return cipher


CipherDep = Annotated[Cipher, Depends(get_cipher)]
