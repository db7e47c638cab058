"""Keyed pseudonyms for person keys: monitoring topics and logs carry these, never a CPR number."""

from __future__ import annotations

import hashlib
import hmac


def pseudonym(person_key: str, secret: bytes) -> str:
    """A stable 16-hex-digit pseudonym; without the secret it cannot be reversed by trying all CPR numbers."""
    return hmac.new(secret, person_key.encode(), hashlib.sha256).hexdigest()[:16]
