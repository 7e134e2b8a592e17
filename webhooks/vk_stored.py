"""VK deliveries as they may be stored: the page's secret, which VK copies into every
body, masked (see docs/platforms.md, section 1)."""

from __future__ import annotations

import functools
import json

from webhooks.base import PageSecrets

SECRET_MASK = "***"
_SECRET_KEY = b'"secret"'
_BLANKS = b" \t\r\n"


def stored_body(page: PageSecrets, body: bytes) -> bytes:
    """The verified body as it may be kept: VK's `secret` replaced by `***`.

    VK copies the page's secret into every body; stored deliveries are kept for
    good and shown to administrators, so the secret must not stay in them. The
    usual body spells the secret as plain JSON and is masked by slicing the bytes
    (the hot path); a body that spells it with escapes is
    decoded and encoded again. Processing never needs the secret: it was checked
    on receipt.
    """
    secret = page.secret
    if not secret:
        return body
    for spelled in _spellings(secret):
        start = body.find(_SECRET_KEY)
        while start >= 0:
            at = start + len(_SECRET_KEY)
            while at < len(body) and body[at] in _BLANKS:
                at += 1
            if body[at : at + 1] == b":":
                at += 1
                while at < len(body) and body[at] in _BLANKS:
                    at += 1
                if body.startswith(spelled, at):
                    masked = body[:at] + b'"***"' + body[at + len(spelled) :]
                    return masked if spelled not in masked else mask_secret(body)
            start = body.find(_SECRET_KEY, start + 1)
    return mask_secret(body)


@functools.lru_cache(maxsize=1024)
def _spellings(secret: str) -> tuple[bytes, ...]:
    plain = json.dumps(secret).encode()
    native = json.dumps(secret, ensure_ascii=False).encode()
    return (plain,) if plain == native else (plain, native)


def mask_secret(body: bytes) -> bytes:
    """The body with any `secret` field masked, decoded and encoded again (slow path)."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return body
    if not isinstance(data, dict) or data.get("secret") in (None, SECRET_MASK):
        return body
    data["secret"] = SECRET_MASK
    return json.dumps(data, ensure_ascii=False).encode("utf-8")
