"""Artifacts: named, content-addressed files attached to trials.

An artifact is a reference document in the ``artifacts`` collection::

    {"uid": "<trial uid>/<name>", "trial": "<trial uid>", "name": "model/weights.pt",
     "sha256": "...", "size": 1234, "media_type": "application/octet-stream",
     "metadata": {...}, "created": 1764489600.0}

pointing at a blob that the store keeps once per distinct content (see
:mod:`track_backends.blobs`). Uploads stream in chunks of :data:`~track_backends.blobs.CHUNK_SIZE`
bytes, the blob is written (and made durable) before its reference, and reads are verified
against the sha256. Deleting an artifact removes its reference; ``track-backends gc`` removes
blobs that nothing references any more.
"""

from __future__ import annotations

import mimetypes
import os
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO, Any

from ..blobs import CHUNK_SIZE, Readable, VerifiedReader, iter_chunks
from ..encoding import prepare_document
from ..errors import ArtifactError, CorruptStoreError, EncodingError, NotFoundError
from ..layout import ARTIFACTS
from ..model import Trial, uid_of
from ..store import TRIALS, Store
from .metrics import MetricsProtocol

MAX_NAME = 512
"""Longest artifact name, in characters."""

DEFAULT_MEDIA_TYPE = "application/octet-stream"


@dataclass(frozen=True)
class ArtifactInfo:
    """What is stored about an artifact.

    Attributes:
        name: The artifact's name within its trial (``/`` separates folders).
        sha256: Hex sha256 of the content (the blob's address).
        size: Size in bytes.
        media_type: MIME type, guessed from the name when not given.
        metadata: JSON-like metadata given when it was stored.
        trial: The uid of the trial it belongs to.
        created: When the reference was written (the store's clock, epoch seconds).
    """

    name: str
    sha256: str
    size: int
    media_type: str
    metadata: dict[str, Any] = field(default_factory=dict)
    trial: str = ""
    created: float = 0.0

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> ArtifactInfo:
        """Build from a reference document."""
        return cls(
            name=doc["name"],
            sha256=doc["sha256"],
            size=doc["size"],
            media_type=doc.get("media_type") or DEFAULT_MEDIA_TYPE,
            metadata=dict(doc.get("metadata") or {}),
            trial=doc.get("trial", ""),
            created=doc.get("created", 0.0),
        )


def check_artifact_name(name: Any) -> str:
    """Validate an artifact name: relative ``/``-separated parts, no traversal, no control characters.

    >>> check_artifact_name("plots/loss.png")
    'plots/loss.png'
    >>> check_artifact_name("../etc/passwd")
    Traceback (most recent call last):
    ...
    track_backends.errors.ArtifactError: bad artifact name '../etc/passwd': '.' and '..' are not allowed as parts

    Raises:
        ArtifactError: The name is empty, too long, absolute, has an empty, ``.`` or ``..`` part,
            a backslash, a NUL or another control character.
    """
    if type(name) is not str or not name:
        raise ArtifactError(f"an artifact name is a non-empty str, got {name!r:.80}")
    if len(name) > MAX_NAME:
        raise ArtifactError(f"bad artifact name {name[:40]!r}...: longer than {MAX_NAME} characters")
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in name):
        raise ArtifactError(f"bad artifact name {name!r:.80}: NUL and control characters are not allowed")
    if "\\" in name:
        raise ArtifactError(f"bad artifact name {name!r:.80}: use '/' to separate folders, not '\\'")
    if name.startswith("/"):
        raise ArtifactError(f"bad artifact name {name!r:.80}: it must be relative (no leading '/')")
    parts = name.split("/")
    if any(p in (".", "..") for p in parts):
        raise ArtifactError(f"bad artifact name {name!r:.80}: '.' and '..' are not allowed as parts")
    if any(not p for p in parts):
        raise ArtifactError(f"bad artifact name {name!r:.80}: empty parts ('//' or a trailing '/')")
    return name


def _trial_uid(trial: Any) -> str:
    uid = uid_of(trial)
    if uid is None:
        raise ArtifactError(f"expected a Trial or a trial uid, got {trial!r:.80}")
    return uid


def _check_meta(media_type: Any, metadata: Any, name: str) -> tuple[str, dict[str, Any]]:
    if media_type is None:
        media_type = mimetypes.guess_type(name, strict=False)[0] or DEFAULT_MEDIA_TYPE
    if type(media_type) is not str or "/" not in media_type or len(media_type) > 255:
        raise ArtifactError(f"bad media type {media_type!r:.80}: expected 'type/subtype'")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, Mapping):
        raise ArtifactError(f"artifact metadata is a mapping, got {type(metadata).__name__}")
    try:
        metadata = prepare_document({"uid": "m", "m": dict(metadata)})["m"]
    except EncodingError as e:
        raise ArtifactError(f"artifact metadata cannot be stored: {e}") from e
    return media_type, metadata


def _write_source(writer: Any, source: Any) -> None:
    """Stream ``source`` (bytes, a path, or a binary file object) into a blob writer."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        view = memoryview(source).cast("B")
        for i in range(0, len(view), CHUNK_SIZE):
            writer.write(view[i : i + CHUNK_SIZE])
        return
    if isinstance(source, (str, os.PathLike)):
        try:
            f = open(source, "rb")  # noqa: SIM115 - closed below
        except OSError as e:
            raise ArtifactError(f"cannot read artifact source {os.fspath(source)!r}: {e.strerror or e}") from e
        with f:
            for chunk in iter_chunks(f):
                writer.write(chunk)
        return
    if callable(getattr(source, "read", None)):
        for chunk in iter_chunks(source):
            if not isinstance(chunk, (bytes, bytearray, memoryview)):
                raise ArtifactError(f"the artifact source returned {type(chunk).__name__}: open it in binary mode")
            writer.write(chunk)
        return
    raise ArtifactError(f"an artifact source is bytes, a path or a binary file object, got {type(source).__name__}")


class ArtifactsProtocol(MetricsProtocol):
    """Artifact methods of the Protocol (see the module docstring)."""

    store: Store

    def _check_writable(self, trial: Any, uid: str) -> None:
        """The trial is stored and, if this worker reserved it, still this worker's."""
        if isinstance(trial, Trial):
            if not self.store.count(TRIALS, self._target(trial)):
                raise self._missed(TRIALS, trial)
        elif not self.store.count(TRIALS, {"uid": uid}):
            raise NotFoundError(f"no trial with uid {uid!r} is stored")

    def put_artifact(
        self,
        trial: Trial | str,
        name: str,
        source: bytes | bytearray | memoryview | str | os.PathLike[str] | Readable,
        *,
        media_type: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> ArtifactInfo:
        """Store an artifact of a trial, replacing one of the same name.

        The content is streamed in chunks (never held whole), stored once per distinct content,
        and made durable before the reference is written: a failure or a crash half-way leaves
        the previous artifact of that name (or none) visible.

        Args:
            trial: The trial (a reserved trial's write is fenced by its lease) or its uid.
            name: Relative name, ``/`` separating folders (see :func:`check_artifact_name`).
            source: ``bytes``, a path to a file, or a binary file object read to its end.
            media_type: MIME type; guessed from ``name`` when ``None``.
            metadata: JSON-like values kept with the reference.

        Returns:
            The stored artifact's :class:`ArtifactInfo`.

        Raises:
            ArtifactError: The name, source, media type or metadata is bad (nothing is stored).
            NotFoundError: The trial is not stored.
            LeaseLostError: The trial was reserved by this worker and handed to another since.
        """
        uid = _trial_uid(trial)
        check_artifact_name(name)
        media_type, meta = _check_meta(media_type, metadata, name)
        self._check_writable(trial, uid)
        writer = self.store.blob_writer()
        try:
            _write_source(writer, source)
            stat = writer.commit()
        except BaseException:
            writer.abort()
            raise
        doc = {
            "trial": uid,
            "name": name,
            "sha256": stat.sha256,
            "size": stat.size,
            "media_type": media_type,
            "metadata": meta,
            "created": self.store.now(),
        }
        self.store.update(ARTIFACTS, {"uid": f"{uid}/{name}"}, {"$set": doc}, upsert=True)
        return ArtifactInfo.from_doc(doc)

    def get_artifact(self, trial: Trial | str, name: str) -> ArtifactInfo:
        """Return the :class:`ArtifactInfo` of a trial's artifact.

        Raises:
            NotFoundError: The trial has no artifact of that name.
        """
        return ArtifactInfo.from_doc(self._artifact_doc(_trial_uid(trial), check_artifact_name(name)))

    def _artifact_doc(self, uid: str, name: str) -> dict[str, Any]:
        doc = self.store.find_one(ARTIFACTS, {"uid": f"{uid}/{name}"})
        if doc is None:
            raise NotFoundError(f"trial {uid} has no artifact {name!r}")
        return doc

    def open_artifact(self, trial: Trial | str, name: str) -> IO[bytes]:
        """Open an artifact's content as a binary stream, verified against its sha256.

        Reading the stream to its end (or closing it after) raises
        :class:`~track_backends.errors.CorruptStoreError` when the stored bytes are damaged.

        Raises:
            NotFoundError: The trial has no artifact of that name.
            CorruptStoreError: The artifact's blob is missing from the store.
        """
        uid = _trial_uid(trial)
        doc = self._artifact_doc(uid, check_artifact_name(name))
        where = f"artifact {name!r} of trial {uid}"
        try:
            raw = self.store.open_blob(doc["sha256"])
        except NotFoundError as e:
            raise CorruptStoreError(f"{where} refers to blob {doc['sha256']}, which is missing") from e
        return VerifiedReader(raw, doc["sha256"], doc["size"], where)  # type: ignore[return-value]

    def read_artifact(self, trial: Trial | str, name: str) -> bytes:
        """Return an artifact's whole content (verified); for small artifacts."""
        with self.open_artifact(trial, name) as f:
            return f.read()

    def list_artifacts(self, trial: Trial | str) -> list[ArtifactInfo]:
        """Return a trial's artifacts, sorted by name."""
        docs = self.store.find(ARTIFACTS, {"trial": _trial_uid(trial)}, sort=[("name", 1)])
        return [ArtifactInfo.from_doc(d) for d in docs]

    def delete_artifact(self, trial: Trial | str, name: str) -> None:
        """Remove an artifact's reference (its blob goes at the next ``gc`` if nothing else uses it).

        Raises:
            NotFoundError: The trial has no artifact of that name.
            LeaseLostError: The trial was reserved by this worker and handed to another since.
        """
        uid = _trial_uid(trial)
        check_artifact_name(name)
        if isinstance(trial, Trial):
            self._check_writable(trial, uid)
        if not self.store.delete(ARTIFACTS, {"uid": f"{uid}/{name}"}):
            raise NotFoundError(f"trial {uid} has no artifact {name!r}")
