"""Small helpers the HTTP client's modules share: which failures mean "not sent", and safe descriptions."""

from __future__ import annotations

import httpx

from ...uri import mask_password

NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
"""Failures that happen before a request leaves: retrying one cannot apply anything twice."""


def describe(error: BaseException | None) -> str:
    """A one-line description of a transport failure, credentials masked, at most 300 characters."""
    text = str(error) or type(error).__name__
    return mask_password(" ".join(text.split()))[:300]


def looks_like_tls(error: BaseException | None) -> bool:
    """Whether a failure looks like an https client talking to a plain server (or the reverse)."""
    return isinstance(error, (httpx.RemoteProtocolError, httpx.ReadError))
