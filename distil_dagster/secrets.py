"""Keeping secrets (API keys, Hub tokens) out of error messages and logs."""

from __future__ import annotations

__all__ = ["MASK", "mask_secret"]

MASK = "**********"


def mask_secret(text: str, secret: str) -> str:
    """``text`` with ``secret`` masked wherever it appears, also escaped as a str or bytes literal shows
    it (an HTTP client refusing a header with a control character quotes the value that way)."""
    if not secret:
        return text
    forms = {secret, repr(secret)[1:-1], repr(secret.encode())[2:-1]}
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, MASK)
    return text
