"""Text fetched from ``http(s)://`` URLs: a ``pipeline.yaml`` or a pipeline script on the Hub or elsewhere.

``HF_TOKEN`` goes only to the Hugging Face Hub's host (``HF_ENDPOINT``'s), never to another host;
an answer larger than ``MAX_URL_BYTES`` is refused.
"""

from __future__ import annotations

import os
import urllib.parse
import urllib.request
from pathlib import Path

from distil_dagster import __version__

__all__ = ["MAX_URL_BYTES", "fetch_text", "is_url"]

#: The most a file fetched from a URL may hold.
MAX_URL_BYTES = 16 * 1024 * 1024


def is_url(path: str | Path) -> bool:
    """Whether ``path`` is an ``http(s)://`` URL rather than a file."""
    return isinstance(path, str) and path.startswith(("http://", "https://"))


def _hub_token(url: str) -> str | None:
    """``HF_TOKEN`` for a URL on the Hugging Face Hub (``HF_ENDPOINT``'s host), never for another host."""
    hub = urllib.parse.urlsplit(os.environ.get("HF_ENDPOINT") or "https://huggingface.co").netloc
    return os.environ.get("HF_TOKEN") if urllib.parse.urlsplit(url).netloc == hub else None


def fetch_text(url: str, timeout: float = 60.0) -> str:
    """The UTF-8 text at ``url`` (``http``/``https``), at most ``MAX_URL_BYTES``.

    Raises what ``urllib`` raises (``OSError``, ``http.client.HTTPException``), ``UnicodeDecodeError``,
    or ``ValueError`` for an answer that is too large.
    """
    request = urllib.request.Request(url, headers={"User-Agent": f"distil_dagster/{__version__}"})
    token = _hub_token(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        body = answer.read(MAX_URL_BYTES + 1)
    if len(body) > MAX_URL_BYTES:
        raise ValueError(f"larger than {MAX_URL_BYTES // (1024 * 1024)} MB")
    return body.decode("utf-8")
