"""Data model: projects, trial groups, trials and statuses, and their document forms."""

from __future__ import annotations

import hashlib
import math
import struct
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .encoding import encode
from .errors import EncodingError


@dataclass(frozen=True)
class Status:
    """A trial status: a name and a numeric value (track's values, plus custom ones).

    The predefined statuses are class attributes: ``Status.Created`` (0), ``Status.Running``
    (101), ``Status.Interrupted`` (201), ``Status.Exception`` (202), ``Status.Broken`` (203),
    ``Status.Suspended`` (301) and ``Status.Completed`` (302). ``Status("Custom", 500)`` makes a
    custom one.
    """

    name: str
    value: int

    Created: ClassVar[Status]
    Running: ClassVar[Status]
    Interrupted: ClassVar[Status]
    Exception: ClassVar[Status]
    Broken: ClassVar[Status]
    Suspended: ClassVar[Status]
    Completed: ClassVar[Status]

    def to_doc(self) -> dict[str, Any]:
        """Return the document form ``{"name": ..., "value": ...}``."""
        return {"name": self.name, "value": self.value}

    @classmethod
    def from_doc(cls, doc: Any) -> Status:
        """Build a status from its document form (or return a known status by name)."""
        if isinstance(doc, Status):
            return doc
        if isinstance(doc, dict):
            return cls(doc["name"], doc["value"])
        if isinstance(doc, str) and doc in _BY_NAME:
            return _BY_NAME[doc]
        raise EncodingError(f"not a status: {doc!r}")


Status.Created = Status("Created", 0)
Status.Running = Status("Running", 101)
Status.Interrupted = Status("Interrupted", 201)
Status.Exception = Status("Exception", 202)
Status.Broken = Status("Broken", 203)
Status.Suspended = Status("Suspended", 301)
Status.Completed = Status("Completed", 302)
_BY_NAME = {
    s.name: s
    for s in (
        Status.Created,
        Status.Running,
        Status.Interrupted,
        Status.Exception,
        Status.Broken,
        Status.Suspended,
        Status.Completed,
    )
}
PREDEFINED_STATUSES: tuple[Status, ...] = tuple(_BY_NAME.values())


def _canonical(value: Any, out: list[bytes]) -> None:
    """Append a type-tagged, length-prefixed encoding of ``value`` to ``out``."""
    t = type(value)
    if value is None:
        out.append(b"N")
    elif t is bool:
        out.append(b"T" if value else b"F")
    elif t is int:
        s = str(value).encode()
        out.append(b"I%d:%s" % (len(s), s))
    elif t is float:
        out.append(b"D" + struct.pack(">d", value if value == value else math.nan))  # one NaN
    elif t is str:
        s = value.encode("utf-8")
        out.append(b"S%d:%s" % (len(s), s))
    elif t is list:
        out.append(b"L%d:" % len(value))
        for v in value:
            _canonical(v, out)
    elif t is dict:
        out.append(b"M%d:" % len(value))
        for k in sorted(value):
            _canonical(k, out)
            _canonical(value[k], out)
    else:  # encode() has already normalised everything else away
        raise EncodingError(f"cannot hash a value of type {t.__name__}")


def trial_uid(hash: str, revision: int) -> str:
    """The uid of revision ``revision`` of the trial whose canonical hash is ``hash``.

    >>> trial_uid("3f2a", 1)
    '3f2a_1'
    """
    return f"{hash}_{int(revision)}"


def uid_of(obj: Any) -> str | None:
    """The uid of a stored object (a Trial, a TrialGroup, ...) or of a uid given as a string.

    >>> uid_of("abc_0"), uid_of(42)
    ('abc_0', None)

    Returns:
        The uid, or ``None`` when ``obj`` is neither a non-empty string nor has a string ``uid``.
    """
    uid = obj if isinstance(obj, str) else getattr(obj, "uid", None)
    return uid if type(uid) is str and uid else None


def canonical_hash(*values: Any) -> str:
    """Hash JSON-like values canonically.

    The encoding is type-tagged and length-prefixed, so nesting, key boundaries and types all
    count: ``1``, ``True``, ``1.0`` and ``"1"`` hash differently, and so do ``{"ab": "c"}`` and
    ``{"a": "bc"}``. Dictionary key order does not count.

    Args:
        *values: Values to hash; they are validated with :func:`~track_backends.encoding.encode`.

    Returns:
        A 32-character hexadecimal digest.
    """
    out: list[bytes] = []
    _canonical([encode(v) for v in values], out)
    return hashlib.sha256(b"".join(out)).hexdigest()[:32]


@dataclass
class Project:
    """A project: the top of the hierarchy. Its uid is its name."""

    name: str
    description: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def uid(self) -> str:
        """The project's unique id (its name)."""
        return self.name

    def to_doc(self) -> dict[str, Any]:
        """Return the document stored for this project."""
        return {"uid": self.uid, "name": self.name, "description": self.description, "metadata": self.metadata}

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Project:
        """Rebuild a project from its document."""
        return cls(name=doc["name"], description=doc.get("description", ""), metadata=doc.get("metadata", {}))


@dataclass
class TrialGroup:
    """A named group of trials inside a project; its uid is a stable hash of both names."""

    name: str
    project_id: str | None = None
    description: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def uid(self) -> str:
        """The group's unique id: a canonical hash of ``(project_id, name)``."""
        return canonical_hash(self.project_id, self.name)

    def to_doc(self) -> dict[str, Any]:
        """Return the document stored for this group."""
        return {
            "uid": self.uid,
            "name": self.name,
            "project_id": self.project_id,
            "description": self.description,
            "metadata": self.metadata,
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> TrialGroup:
        """Rebuild a group from its document."""
        return cls(
            name=doc["name"],
            project_id=doc.get("project_id"),
            description=doc.get("description", ""),
            metadata=doc.get("metadata", {}),
        )


@dataclass
class Trial:
    """One run of an experiment with a set of parameters.

    ``hash`` is a canonical hash of ``(name, version, parameters)`` and ``uid`` is
    ``f"{hash}_{revision}"``.
    """

    parameters: dict[str, Any] = field(default_factory=dict)
    name: str | None = None
    version: str | None = None
    project_id: str | None = None
    group_id: str | None = None
    revision: int = 0
    description: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, list[tuple[Any, Any]]] = field(default_factory=dict, compare=False)
    """The series ``{name: [(step, value), ...]}``, when they were read or logged through this object.

    The points live beside the trial document (see ``fetch_metrics``); the document holds
    :attr:`metric_summary`."""
    metric_summary: dict[str, dict[str, Any]] = field(default_factory=dict)
    """``{name: {"count", "last", "last_step", "min", "max"}}``, which queries filter and sort on."""
    chronos: dict[str, dict[str, float]] = field(default_factory=dict)
    status: Status = field(default_factory=lambda: Status.Created)
    errors: list[str] = field(default_factory=list)
    tags: dict[str, Any] = field(default_factory=dict)
    lease: dict[str, Any] | None = None
    """``{"owner", "token", "expires", "attempts"}`` once the trial was reserved (see ``reserve_trial``)."""
    stored_hash: str | None = field(default=None, repr=False, compare=False)
    """The hash the trial was stored under; it keeps ``uid`` stable when parameters change later."""
    fence: int | None = field(default=None, repr=False, compare=False)
    """The fencing token of the reservation this object came from; Protocol writes are conditional on it."""
    lease_seconds: float | None = field(default=None, repr=False, compare=False)
    """The lease duration this object was reserved with (heartbeats extend it by as much)."""

    @property
    def hash(self) -> str:
        """Canonical hash of ``(name, version, parameters)``, or the hash it was stored under."""
        if self.stored_hash is not None:
            return self.stored_hash
        return canonical_hash(self.name, self.version, self.parameters)

    @property
    def uid(self) -> str:
        """``f"{hash}_{revision}"``."""
        return trial_uid(self.hash, self.revision)

    def to_doc(self) -> dict[str, Any]:
        """Return the document stored for this trial."""
        h = self.hash
        return {
            "uid": trial_uid(h, self.revision),
            "hash": h,
            "revision": int(self.revision),
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "project_id": self.project_id,
            "group_id": self.group_id,
            "parameters": self.parameters,
            "metadata": self.metadata,
            "metric_summary": self.metric_summary,
            "chronos": self.chronos,
            "status": Status.from_doc(self.status).to_doc(),
            "errors": self.errors,
            "tags": self.tags,
            **({"lease": self.lease} if self.lease is not None else {}),
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Trial:
        """Rebuild a trial from its document (the document is not copied)."""
        return cls(
            parameters=doc.get("parameters", {}),
            name=doc.get("name"),
            version=doc.get("version"),
            project_id=doc.get("project_id"),
            group_id=doc.get("group_id"),
            revision=doc.get("revision", 0),
            description=doc.get("description", ""),
            metadata=doc.get("metadata", {}),
            metric_summary=doc.get("metric_summary", {}),
            chronos=doc.get("chronos", {}),
            status=Status.from_doc(doc["status"]) if "status" in doc else Status.Created,
            errors=doc.get("errors", []),
            tags=doc.get("tags", {}),
            lease=doc.get("lease"),
            stored_hash=doc.get("hash"),
        )
