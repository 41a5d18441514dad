"""The journal file format: its header, how one record becomes bytes and back, whole-file writes.

A journal file starts with a header line, the same for both codecs: a JSON line
``{"k":<crc32>,"r":{"format":"track_backends journal",...}}``. Records follow it:

* ``pickled``: binary frames ``struct.pack(">II", len(payload), crc32(payload)) + payload``, where
  the payload is a pickle (protocol 5). Payloads are unpickled by an unpickler that refuses every
  global, so even a crafted file cannot run code: records only hold lists, dicts, strings,
  numbers, booleans and ``None``.
* ``file``: JSON lines ``{"k":<crc32 of the text of r>,"r":<record>}``, readable with ``jq``.

The checksum of a JSON line is taken over the exact UTF-8 bytes of the ``r`` value, which the
reader slices out of the line (the prefix and suffix are known), so nothing is re-serialised to
check it.

A whole file (a new journal, a snapshot) is written to ``<path>.tmp-<pid>``, flushed, and renamed
over the journal, and the directory is flushed (:func:`write_file`).
"""

from __future__ import annotations

import glob
import io
import json
import os
import pickle
import re
import struct
import zlib
from collections.abc import Iterator
from typing import Any

from ..encoding import SPECIAL_KEY, mark_specials, unmark_special
from ..errors import CorruptStoreError, EncodingError, StoreError

MAGIC = "track_backends journal"
FORMAT_VERSION = 2
"""1: documents only; 2: metric points records beside them (the document layout of :mod:`track_backends.layout`)."""
RECORD_KINDS = frozenset(("insert", "update", "delete", "index", "points", "points_delete"))

_FRAME = struct.Struct(">II")
_PICKLE_START = b"\x80\x05"  # PROTO 5: how every pickled payload starts
_LINE_PREFIX = b'{"k":'
_LINE_MIDDLE = b',"r":'
_MAX_HEADER = 4096
_LINE_BREAKS = re.compile("[\x85\u2028\u2029]")  # str.splitlines() splits on these; json.dumps leaves them


_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def _escape(m: re.Match[str]) -> str:
    return f"\\u{ord(m.group()):04x}"


class BadFrame(Exception):
    """A complete frame (or line) in ``buf[start:end]`` fails its checksum or does not decode."""

    def __init__(self, start: int, end: int, reason: str) -> None:
        super().__init__(reason)
        self.start = start
        self.end = end
        self.reason = reason


class NotAJournal(Exception):
    """The bytes at the start of a file are not a header written by this library."""


def json_line(obj: Any) -> bytes:
    """Encode ``obj`` as one checksummed JSON line ``{"k":crc,"r":obj}`` ending in a newline.

    Raises:
        EncodingError: A string holds a surrogate code point (it is not valid UTF-8, and ``jq``
            and JSONB refuse its escape).
    """
    try:
        s = _ENCODE(obj)
    except ValueError:  # NaN or an infinity: JSON has none, so its stand-in goes in the line
        s = _ENCODE(mark_specials(obj))
    if _LINE_BREAKS.search(s):  # keep one record per line for every line splitter, not just "\n"
        s = _LINE_BREAKS.sub(_escape, s)
    try:
        text = s.encode("utf-8")
    except UnicodeEncodeError as e:
        raise EncodingError(
            f"cannot store the string {e.object[max(0, e.start - 20) : e.end + 20]!r} in a file: journal: "
            "it holds a lone surrogate code point, which is not valid UTF-8"
        ) from None
    return b"%s%d%s%s}\n" % (_LINE_PREFIX, zlib.crc32(text), _LINE_MIDDLE, text)


def _line_payload(line: bytes) -> bytes | None:
    """Return the checksummed ``r`` bytes of a line (without its newline), or None if it is bad."""
    if not line.startswith(_LINE_PREFIX) or not line.endswith(b"}"):
        return None
    j = line.find(_LINE_MIDDLE, len(_LINE_PREFIX))
    digits = line[len(_LINE_PREFIX) : j]
    if j < 0 or not digits.isdigit() or len(digits) > 10:
        return None
    payload = line[j + len(_LINE_MIDDLE) : -1]
    if zlib.crc32(payload) != int(digits):
        return None
    return payload


def header_line(codec: str, generation: int, snapshot_bytes: int) -> bytes:
    """The header that starts every journal file."""
    return json_line(
        {
            "format": MAGIC,
            "version": FORMAT_VERSION,
            "codec": codec,
            "generation": generation,
            "snapshot_bytes": snapshot_bytes,
        }
    )


def read_header(head: bytes) -> tuple[dict[str, Any], int]:
    """Parse the header at the start of a file.

    Args:
        head: The first bytes of the file (at least the whole header line, at most a few KiB).

    Returns:
        The header and its length in bytes (where the first record starts).

    Raises:
        NotAJournal: The bytes are not a header written by this library. Nothing is unpickled.
    """
    if not head.startswith(_LINE_PREFIX):
        raise NotAJournal("it does not start with a track_backends journal header")
    nl = head.find(b"\n", 0, _MAX_HEADER)
    if nl < 0:
        raise NotAJournal("its header line is missing or too long")
    payload = _line_payload(head[:nl])
    if payload is None:
        raise NotAJournal("its header line fails its checksum")
    try:
        header = json.loads(payload)
    except ValueError:
        raise NotAJournal("its header line is not JSON") from None
    if not isinstance(header, dict) or header.get("format") != MAGIC:
        raise NotAJournal("its header does not name the track_backends journal format")
    for key in ("version", "generation", "snapshot_bytes"):
        if type(header.get(key)) is not int or header[key] < 0:
            raise NotAJournal(f"its header has a bad {key!r}")
    if header.get("codec") not in CODECS:
        raise NotAJournal(f"its header names an unknown codec {header.get('codec')!r}")
    return header, nl + 1


EMPTY: tuple[dict[str, Any], int] = ({"generation": 0, "snapshot_bytes": 0}, 0)
"""What an empty file holds in place of a header: an empty journal that gets its header on its first write."""


def check_header(head: bytes, codec: str, path: str) -> tuple[dict[str, Any], int]:
    """Read the header of a non-empty journal file and check that this library can read it.

    Args:
        head: The first bytes of the file (at least 4 KiB, or the whole file).
        codec: The codec the caller expects.
        path: The file, for messages.

    Returns:
        The header and its length in bytes.

    Raises:
        CorruptStoreError: Not a journal, a newer format version, or another codec.
    """
    try:
        header, header_len = read_header(head)
    except NotAJournal as e:
        raise CorruptStoreError(f"{path} is not a track_backends journal: {e}") from None
    if header["version"] > FORMAT_VERSION:
        raise CorruptStoreError(
            f"{path} has journal format version {header['version']}; this version of "
            f"track_backends reads up to {FORMAT_VERSION}: upgrade it"
        )
    if header["codec"] != codec:
        raise CorruptStoreError(
            f"{path} is a {header['codec']}: journal; open it as {header['codec']}:{path} instead of {codec}:"
        )
    return header, header_len


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file(path: str, header: bytes, chunks: list[bytes], mode: int | None = None) -> None:
    """Replace the journal ``path`` by a file holding ``header`` and ``chunks``, atomically and durably.

    Call it under the journal's exclusive lock: leftover ``<path>.tmp-*`` files are removed first.

    Args:
        path: The journal file (a real path, not a symbolic link, which would be replaced).
        header: The header line.
        chunks: The framed records that follow it.
        mode: Permission bits for the new file (default: ``0o666`` less the umask).

    Raises:
        StoreError: The file could not be written; the journal is left as it was.
    """
    for stale in glob.glob(glob.escape(path) + ".tmp-*"):
        try:
            os.unlink(stale)
        except OSError:
            pass
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
        try:
            if mode is not None:
                os.fchmod(fd, mode)
            with os.fdopen(fd, "wb", buffering=1 << 20, closefd=False) as f:
                f.write(header)
                for c in chunks:
                    f.write(c)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        _fsync_dir(os.path.dirname(path))
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise StoreError(f"cannot write journal {path}: {e.strerror or e}") from e


def _valid_record(rec: Any) -> bool:
    return type(rec) is list and len(rec) >= 3 and rec[0] in RECORD_KINDS and type(rec[1]) is str


class _SafeUnpickler(pickle.Unpickler):
    """An unpickler for plain data: any global (class, function) is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name} from a journal")


class Codec:
    """How records are framed in a journal file."""

    name = ""

    def frame(self, record: list[Any]) -> bytes:
        """Encode and frame one record."""
        raise NotImplementedError

    def scan(self, buf: bytes, pos: int = 0) -> Iterator[tuple[list[Any], int]]:
        """Yield ``(record, end)`` for each complete, valid record in ``buf`` from ``pos``.

        Stops silently at an incomplete frame at the end of ``buf``.

        Raises:
            BadFrame: A complete frame fails its checksum or does not decode to a record.
        """
        raise NotImplementedError

    def valid_after(self, buf: bytes, start: int) -> bool:
        """Whether a checksum-valid record starts anywhere in ``buf`` after byte ``start``.

        Tells a torn write (garbage, zeros or a partial record, and nothing valid after it) from
        damage in the middle of a journal.
        """
        raise NotImplementedError


class PickleCodec(Codec):
    """Length- and CRC-framed pickles (``pickled:``)."""

    name = "pickled"

    def frame(self, record: list[Any]) -> bytes:
        payload = pickle.dumps(record, protocol=5)
        return _FRAME.pack(len(payload), zlib.crc32(payload)) + payload

    def scan(self, buf: bytes, pos: int = 0) -> Iterator[tuple[list[Any], int]]:
        n = len(buf)
        unpack = _FRAME.unpack_from
        crc32 = zlib.crc32
        view = memoryview(buf)
        while pos + 8 <= n:
            length, crc = unpack(buf, pos)
            end = pos + 8 + length
            if end > n:
                return
            payload = view[pos + 8 : end]
            if length == 0 or crc32(payload) != crc:
                raise BadFrame(pos, end, "checksum mismatch")
            try:
                rec = _SafeUnpickler(io.BytesIO(payload)).load()
            except Exception as e:
                raise BadFrame(pos, end, f"undecodable record: {e}") from None
            if not _valid_record(rec):
                raise BadFrame(pos, end, "not a journal record")
            yield rec, end
            pos = end

    def valid_after(self, buf: bytes, start: int) -> bool:
        n = len(buf)
        view = memoryview(buf)
        i = start + 9  # a frame starting at start + 1 or later has its pickle at start + 9 or later
        while True:
            i = buf.find(_PICKLE_START, i)
            if i < 0:
                return False
            length, crc = _FRAME.unpack_from(buf, i - 8)
            if length and i + length <= n and zlib.crc32(view[i : i + length]) == crc:
                return True
            i += 1


_SPECIAL = b'{"%s":' % SPECIAL_KEY.encode()


def _unmark(pairs: list[tuple[str, Any]]) -> Any:
    number = unmark_special(pairs)
    return dict(pairs) if number is None else number


class JsonLinesCodec(Codec):
    """Checksummed JSON lines (``file:``)."""

    name = "file"

    def frame(self, record: list[Any]) -> bytes:
        return json_line(record)

    def scan(self, buf: bytes, pos: int = 0) -> Iterator[tuple[list[Any], int]]:
        loads = json.loads
        while True:
            nl = buf.find(b"\n", pos)
            if nl < 0:
                return
            end = nl + 1
            payload = _line_payload(buf[pos:nl])
            if payload is None:
                raise BadFrame(pos, end, "checksum mismatch or malformed line")
            try:
                rec = loads(payload) if _SPECIAL not in payload else loads(payload, object_pairs_hook=_unmark)
            except ValueError as e:
                raise BadFrame(pos, end, f"undecodable record: {e}") from None
            if not _valid_record(rec):
                raise BadFrame(pos, end, "not a journal record")
            yield rec, end
            pos = end

    def valid_after(self, buf: bytes, start: int) -> bool:
        pos = buf.find(b"\n", start) + 1
        while pos:
            nl = buf.find(b"\n", pos)
            if nl < 0:
                return False
            if _line_payload(buf[pos:nl]) is not None:
                return True
            pos = nl + 1
        return False


CODECS: dict[str, Codec] = {"pickled": PickleCodec(), "file": JsonLinesCodec()}
