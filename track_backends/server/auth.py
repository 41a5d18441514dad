"""Checking bearer tokens against the token file, in constant time, without ever logging one.

Every token that is not already known to be right costs one scrypt, whether it is right, wrong,
malformed or names no entry (those are checked against a dummy entry), so the time of a 401 says
nothing about how close a guess was. A token once verified is remembered (by its SHA-256, in this
process only) so that a worker does not pay a scrypt per request; the memory is dropped whenever
the file changes, which is how a removed token stops working without a restart.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from ..stores.http.errors import AuthenticationError
from .tokens import SCRYPT_PARAMS, TokenEntry, TokenFileError, derive, load_tokens, split_token

log = logging.getLogger("track_backends.server")
_CACHE_SIZE = 1024
_RELOAD_EVERY = 1.0  # seconds between checks of the token file's modification time
_DUMMY_SECRET = "x" * 43


@dataclass(frozen=True)
class Identity:
    """Who made a request: the token's name (``"-"`` without a token file) and role."""

    name: str
    role: str


OPEN = Identity("-", "admin")
"""The identity of every request when the server runs without a token file (loopback only)."""


class Authenticator:
    """Verifies ``Authorization: Bearer`` headers against a token file.

    Args:
        path: The token file, or ``None`` to let every request through as :data:`OPEN`.
        kdf_slots: How many scrypt computations may run at once (each takes ~16 MiB).

    Raises:
        TokenFileError: The file cannot be read at start.
    """

    def __init__(self, path: str | None, kdf_slots: int = 2) -> None:
        self.path = path
        self._entries: dict[str, TokenEntry] = {}
        self._stamp: tuple[int, int] | None = None
        self._checked = 0.0
        self._cache: OrderedDict[bytes, Identity] = OrderedDict()
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(kdf_slots)
        self._dummy = TokenEntry("-", "read", "-", secrets.token_hex(16), secrets.token_hex(32), SCRYPT_PARAMS, 0.0)
        if path is not None:
            self._reload(force=True)

    @property
    def enabled(self) -> bool:
        """Whether requests need a token."""
        return self.path is not None

    def _reload(self, force: bool = False) -> None:
        assert self.path is not None
        now = time.monotonic()
        if not force and now - self._checked < _RELOAD_EVERY:
            return
        self._checked = now
        try:
            st = os.stat(self.path)
            stamp = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = None
        if stamp == self._stamp and not force:
            return
        try:
            entries = {e.id: e for e in load_tokens(self.path)}
        except TokenFileError as e:
            if force:
                raise
            log.warning('{"event": "tokens_unreadable", "detail": %r}', type(e).__name__)
            entries = {}  # fail closed: no token works until the file is fixed
        with self._lock:
            self._entries, self._stamp = entries, stamp
            self._cache.clear()

    def authenticate(self, header: str | None) -> Identity:
        """The identity an ``Authorization`` header proves (blocking: may run a scrypt).

        Raises:
            AuthenticationError: No bearer token, or not a token of the file.
        """
        if self.path is None:
            return OPEN
        self._reload()
        scheme, _, token = (header or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthenticationError("this server needs a bearer token (Authorization: Bearer <token>)")
        key = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        with self._lock:
            known = self._cache.get(key)
            if known is not None:
                self._cache.move_to_end(key)
                return known
            stamp, entries = self._stamp, self._entries
        parts = split_token(token)
        entry = entries.get(parts[0]) if parts else None
        secret = parts[1] if parts else _DUMMY_SECRET
        target = entry or self._dummy
        with self._slots:
            digest = derive(secret, bytes.fromhex(target.salt), target.params)
        if not hmac.compare_digest(digest, bytes.fromhex(target.hash)) or entry is None:
            raise AuthenticationError("the token is not valid for this server")
        identity = Identity(entry.name, entry.role)
        with self._lock:
            if self._stamp != stamp:  # the file changed meanwhile: do not remember a token it may drop
                return identity
            self._cache[key] = identity
            if len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return identity
