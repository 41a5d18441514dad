"""The token file: named bearer tokens with roles, stored as salted scrypt hashes only.

A token reads ``tb_<id>_<secret>``: ``id`` picks the file's entry (it is not secret), ``secret``
is 32 random bytes. The file (JSON, written atomically with mode 0600) keeps, per token, its name,
role, id, a random salt, the scrypt parameters and the derived hash: never the token. Whoever
reads the file cannot call the server with it, and guessing a token costs a scrypt per guess.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import tempfile
import time
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import TrackBackendsError
from .routes import ROLES

SCRYPT_PARAMS = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}
"""scrypt's work factors for new tokens: about 16 MiB and a few tens of milliseconds per check."""
_TOKEN_RE = re.compile(r"^tb_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
FORMAT = 1


class TokenFileError(TrackBackendsError, ValueError):
    """The token file is missing, unreadable or malformed, or an argument to change it is bad."""


@dataclass(frozen=True)
class TokenEntry:
    """One token as the file stores it (no secret in it).

    Attributes:
        name: Who holds it (shown in log lines).
        role: ``read``, ``write`` or ``admin``.
        id: Picks the entry from the token's text.
        salt: Hex of the random salt.
        hash: Hex of scrypt(secret, salt).
        params: scrypt's ``n``, ``r``, ``p`` and ``dklen``.
        created: When it was made (seconds since the epoch).
    """

    name: str
    role: str
    id: str
    salt: str
    hash: str
    params: dict[str, int]
    created: float


def split_token(token: str) -> tuple[str, str] | None:
    """The ``(id, secret)`` of a well-formed token, else ``None``."""
    m = _TOKEN_RE.match(token)
    return (m.group(1), m.group(2)) if m else None


def derive(secret: str, salt: bytes, params: dict[str, int]) -> bytes:
    """The scrypt hash of a token's secret.

    Raises:
        TokenFileError: The parameters are out of the range this library writes.
    """
    n, r, p, dklen = params.get("n", 0), params.get("r", 0), params.get("p", 0), params.get("dklen", 0)
    if not (2 <= n <= 2**20 and n & (n - 1) == 0 and 1 <= r <= 32 and 1 <= p <= 16 and 16 <= dklen <= 64):
        raise TokenFileError(f"unsupported scrypt parameters {params!r:.80}")
    return hashlib.scrypt(secret.encode(), salt=salt, n=n, r=r, p=p, dklen=dklen, maxmem=256 * 1024 * 1024)


def _entry(raw: Any, path: str) -> TokenEntry:
    try:
        entry = TokenEntry(
            name=str(raw["name"]),
            role=str(raw["role"]),
            id=str(raw["id"]),
            salt=str(raw["salt"]),
            hash=str(raw["hash"]),
            params={k: int(v) for k, v in dict(raw["params"]).items()},
            created=float(raw.get("created", 0)),
        )
        bytes.fromhex(entry.salt), bytes.fromhex(entry.hash)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise TokenFileError(f"token file {path}: malformed entry ({type(e).__name__})") from None
    if entry.role not in ROLES:
        raise TokenFileError(f"token file {path}: entry {entry.name!r} has unknown role {entry.role!r}")
    return entry


def load_tokens(path: str, *, missing_ok: bool = False) -> list[TokenEntry]:
    """Read a token file.

    Args:
        path: The file.
        missing_ok: Return an empty list when it does not exist (for ``token add``).

    Raises:
        TokenFileError: It does not exist (unless ``missing_ok``), cannot be read, or is malformed.
    """
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        if missing_ok:
            return []
        raise TokenFileError(f"token file {path} does not exist; create it with 'track-backends token add'") from None
    except (OSError, ValueError) as e:
        raise TokenFileError(f"cannot read token file {path}: {type(e).__name__}: {e}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("tokens"), list):
        raise TokenFileError(f"{path} is not a track_backends token file (format {FORMAT})")
    return [_entry(raw, path) for raw in data["tokens"]]


def save_tokens(path: str, entries: list[TokenEntry]) -> None:
    """Write a token file atomically (temporary file, fsync, rename), readable by its owner only.

    Raises:
        TokenFileError: It cannot be written.
    """
    directory = os.path.dirname(os.path.abspath(path))
    data = {"format": FORMAT, "kdf": "scrypt", "tokens": [asdict(e) for e in entries]}
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tokens-", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=1)
                f.write("\n")
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as e:
        raise TokenFileError(f"cannot write token file {path}: {e}") from None


def add_token(path: str, name: str, role: str) -> str:
    """Add a token to the file (created if missing) and return it: the only time it is shown.

    Raises:
        TokenFileError: The name is malformed or taken, the role unknown, or the file unusable.
    """
    if not _NAME_RE.match(name):
        raise TokenFileError(f"bad token name {name!r:.80}: use letters, digits and _.@- (at most 64)")
    if role not in ROLES:
        raise TokenFileError(f"unknown role {role!r:.40}; use one of {', '.join(ROLES)}")
    entries = load_tokens(path, missing_ok=True)
    if any(e.name == name for e in entries):
        raise TokenFileError(f"a token named {name!r} exists in {path}; remove it first")
    token_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    salt = secrets.token_bytes(16)
    digest = derive(secret, salt, SCRYPT_PARAMS)
    entry = TokenEntry(name, role, token_id, salt.hex(), digest.hex(), dict(SCRYPT_PARAMS), time.time())
    save_tokens(path, [*entries, entry])
    return f"tb_{token_id}_{secret}"


def remove_token(path: str, name: str) -> bool:
    """Remove the token called ``name``; return whether there was one.

    Raises:
        TokenFileError: The file is unusable.
    """
    entries = load_tokens(path)
    kept = [e for e in entries if e.name != name]
    if len(kept) == len(entries):
        return False
    save_tokens(path, kept)
    return True
