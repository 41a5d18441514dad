"""A call-history recorder (after orquestra): a function's calls, kept in a store, not in memory.

``record(fn, proto, trial)`` returns a :class:`Recorder` that forwards each call to ``fn`` and keeps
the calls that ``save_condition(value, params, call_number)`` selects as documents of the
``history`` collection::

    {"uid": "<trial uid>/<call_number>", "trial": "<trial uid>", "call_number": 7,
     "params": [0.1, 0.2], "value": 0.53, "artifacts": ["calls/7/state"], "time": 1764489600.0}

* ``params`` is the call's single argument when ``fn`` is called with exactly one positional
  argument (an objective function's parameter vector), else a dict of the bound arguments by
  name. ``params`` and ``value`` are stored exactly where the store can hold them (NumPy arrays
  become lists, NaN stays NaN); objects it cannot hold are stored as a summary (type and short
  repr, see :func:`~track_backends.record.summary.storable`): store those as artifacts instead.
* Call numbers start at 0 for a trial and **continue after the highest call number already
  stored for the trial**, so a recorder made after a restart appends to the history. Calls that
  were not saved before the restart are not counted. Use one recorder per trial at a time.
* If ``fn`` has a ``store_artifact`` parameter, the recorder passes a callable
  ``store_artifact(name, value, force=False)``: ``bytes`` are stored as they are, other values
  pickled, as trial artifacts named ``calls/<call_number>/<name>``. They are kept when the call is
  saved; ``force=True`` saves the call (and its artifacts) whatever the condition says.
* Writes are batched: entries are buffered and written with one ``insert_many`` when
  ``batch_size`` are waiting or ``flush_interval`` seconds have passed (checked at each saved
  call), and on :meth:`Recorder.flush`, :meth:`Recorder.close`, the end of a ``with`` block and
  interpreter exit. A process killed with SIGKILL loses what was still buffered.
* ``fn.gradient``, if present, stays reachable as ``recorder.gradient``; gradient calls are not
  recorded.
"""

from __future__ import annotations

import atexit
import functools
import inspect
import logging
import pickle
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, Self, TypeVar

from ..layout import HISTORY
from ..protocol.artifacts import check_artifact_name
from ..store import Store
from .common import RecordError, trial_uid_of
from .summary import storable

R = TypeVar("R")


PICKLE_MEDIA_TYPE = "application/x-python-pickle"
BYTES_MEDIA_TYPE = "application/octet-stream"

SaveCondition = Callable[[Any, Any, int], bool]
"""``(value, params, call_number) -> bool``: whether a call is saved in the history."""

_log = logging.getLogger("track_backends.record")


def always(value: Any, params: Any, call_number: int) -> bool:
    """Save every call (the default condition)."""
    return True


def every_nth(n: int) -> SaveCondition:
    """Save calls number 0, n, 2n, ... (``call_number % n == 0``).

    Raises:
        RecordError: ``n`` is not a positive int.
    """
    if type(n) is not int or n < 1:
        raise RecordError(f"every_nth needs a positive int, got {n!r}")

    def condition(value: Any, params: Any, call_number: int) -> bool:
        return call_number % n == 0

    condition.__qualname__ = condition.__name__ = f"every_nth({n})"
    return condition


@dataclass(frozen=True)
class HistoryEntry:
    """One saved call, as :func:`load_history` returns it.

    Attributes:
        call_number: The call's number for its trial (0, 1, ...).
        params: The call's argument (one positional argument) or its bound arguments by name.
        value: What the function returned (or a summary of it, if the store cannot hold it).
        artifacts: Names of the trial artifacts stored by the call (``calls/<n>/<name>``).
        time: When the call returned (this machine's clock, epoch seconds).
    """

    call_number: int
    params: Any
    value: Any
    artifacts: list[str] = field(default_factory=list)
    time: float = 0.0


class StoreArtifact(Protocol):
    """The type of the ``store_artifact`` argument a recorder passes (for annotating functions)."""

    def __call__(self, name: str, value: Any, force: bool = False) -> None:
        """Keep ``value`` (``bytes``, or any picklable value) as artifact ``calls/<n>/<name>``."""


class _ArtifactSink:
    """The ``store_artifact(name, value, force=False)`` callable given to one call of the function."""

    __slots__ = ("forced", "items")

    def __init__(self) -> None:
        self.items: list[tuple[str, Any]] = []
        self.forced = False

    def __call__(self, name: str, value: Any, force: bool = False) -> None:
        check_artifact_name(name)
        self.items.append((name, value))
        if force:
            self.forced = True


_PENDING: set[Recorder[Any]] = set()
"""Recorders holding buffered entries (kept alive until they are written)."""
_PENDING_LOCK = threading.Lock()
_HOOKED = False


def _flush_pending() -> None:
    """Write every recorder's buffered entries (the ``atexit`` hook)."""
    with _PENDING_LOCK:
        pending = list(_PENDING)
    for recorder in pending:
        try:
            recorder.flush()
        except Exception as e:  # noqa: BLE001 - at exit, report and go on with the others
            _log.error("could not write the buffered history of %r at exit: %s", recorder, e)


class Recorder(Generic[R]):
    """A callable that forwards to a function and records its calls; see :func:`record`.

    It takes the function's arguments except ``store_artifact``, which it supplies (so its
    arguments are typed ``Any``; its result has the function's type).
    """

    gradient: Any
    """The wrapped function's ``gradient``, when it has one (calls to it are not recorded)."""

    def __init__(
        self,
        fn: Callable[..., R],
        proto: Any,
        trial: Any,
        save_condition: SaveCondition = always,
        *,
        batch_size: int = 100,
        flush_interval: float = 5.0,
    ) -> None:
        global _HOOKED
        if not callable(fn) or not callable(save_condition):
            raise RecordError("record() needs a callable function and a callable save_condition")
        if type(batch_size) is not int or batch_size < 1:
            raise RecordError(f"batch_size must be a positive int, got {batch_size!r}")
        if isinstance(flush_interval, bool) or not isinstance(flush_interval, (int, float)) or flush_interval < 0:
            raise RecordError(f"flush_interval must be a number of seconds >= 0, got {flush_interval!r}")
        self._fn, self.proto, self._condition = fn, proto, save_condition
        self._trial = trial
        self._uid = trial_uid_of(trial)
        self.batch_size, self.flush_interval = batch_size, float(flush_interval)
        try:
            self._signature: inspect.Signature | None = inspect.signature(fn)
        except (TypeError, ValueError):
            self._signature = None
        self._takes_store = self._signature is not None and "store_artifact" in self._signature.parameters
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._buffer: list[dict[str, Any]] = []
        self._due = time.monotonic() + self.flush_interval
        last = self._store.find(
            HISTORY, {"trial": self._uid}, sort=[("call_number", -1)], limit=1, projection=["call_number"]
        )
        self._next = last[0]["call_number"] + 1 if last else 0
        if hasattr(fn, "gradient"):
            self.gradient = fn.gradient
        functools.update_wrapper(self, fn, updated=())  # never merge fn.__dict__ into our state
        if not _HOOKED:
            with _PENDING_LOCK:
                if not _HOOKED:
                    atexit.register(_flush_pending)
                    _HOOKED = True

    @property
    def _store(self) -> Store:
        store: Store = self.proto.store
        return store

    @property
    def call_number(self) -> int:
        """The number the next call will get."""
        return self._next

    def __call__(self, *args: Any, **kwargs: Any) -> R:
        with self._lock:
            n = self._next
            self._next = n + 1
        sink = None
        if self._takes_store:
            sink = _ArtifactSink()
            kwargs["store_artifact"] = sink
        value = self._fn(*args, **kwargs)
        if sink is not None:
            del kwargs["store_artifact"]
        params = args[0] if len(args) == 1 and not kwargs else self._params(args, kwargs)
        if self._condition is always or self._condition(value, params, n) or (sink is not None and sink.forced):
            self._save(n, params, value, sink)
        return value

    def _params(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """The bound arguments by name (or ``{"args", "kwargs"}`` for a function without a signature)."""
        if self._signature is None:
            return {"args": list(args), "kwargs": kwargs}
        try:
            bound = self._signature.bind_partial(*args, **kwargs)
        except TypeError:
            return {"args": list(args), "kwargs": kwargs}
        return dict(bound.arguments)

    def _save(self, n: int, params: Any, value: Any, sink: _ArtifactSink | None) -> None:
        names = self._put_artifacts(n, sink.items) if sink is not None and sink.items else []
        doc = {
            "uid": f"{self._uid}/{n}",
            "trial": self._uid,
            "call_number": n,
            "params": storable(params),
            "value": storable(value),
            "artifacts": names,
            "time": time.time(),
        }
        with self._lock:
            buffer = self._buffer
            buffer.append(doc)
            first = len(buffer) == 1
            full = len(buffer) >= self.batch_size or time.monotonic() >= self._due
        if first:
            with _PENDING_LOCK:
                _PENDING.add(self)
        if full:
            self.flush()

    def _put_artifacts(self, n: int, items: list[tuple[str, Any]]) -> list[str]:
        names = []
        for name, value in items:
            if isinstance(value, (bytes, bytearray, memoryview)):
                data, media_type = value, BYTES_MEDIA_TYPE
            else:
                data, media_type = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL), PICKLE_MEDIA_TYPE
            full = f"calls/{n}/{name}"
            self.proto.put_artifact(self._trial, full, data, media_type=media_type)
            names.append(full)
        return names

    def flush(self) -> int:
        """Write the buffered entries now; return how many were written.

        Raises:
            StoreError: The store failed; the entries stay buffered for the next flush.
        """
        with self._flush_lock:
            with self._lock:
                docs, self._buffer = self._buffer, []
                self._due = time.monotonic() + self.flush_interval
            if docs:
                try:
                    self._store.insert_many(HISTORY, docs)
                except BaseException:
                    with self._lock:
                        self._buffer[:0] = docs
                    raise
            with self._lock:
                if not self._buffer:
                    with _PENDING_LOCK:
                        _PENDING.discard(self)
            return len(docs)

    def close(self) -> None:
        """Write the buffered entries (the recorder stays usable; later calls are recorded too)."""
        self.flush()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        name = getattr(self._fn, "__qualname__", type(self._fn).__name__)
        return f"<Recorder of {name} for trial {self._uid}, next call {self._next}>"


def record(
    fn: Callable[..., R],
    proto: Any,
    trial: Any,
    save_condition: SaveCondition = always,
    *,
    batch_size: int = 100,
    flush_interval: float = 5.0,
) -> Recorder[R]:
    """Wrap ``fn`` so that its calls are recorded in ``proto``'s store (see the module docstring).

    Args:
        fn: The function (an objective, a gradient-carrying callable, ...).
        proto: The Protocol whose store keeps the history.
        trial: The :class:`~track_backends.model.Trial` (or trial uid) the calls belong to; it must
            be stored for ``store_artifact`` to work.
        save_condition: ``(value, params, call_number) -> bool``; :func:`always` or
            :func:`every_nth` for example.
        batch_size: Entries buffered before they are written together.
        flush_interval: Seconds after which a saved call writes the buffer even if it is not full.

    Returns:
        A :class:`Recorder`: call it like ``fn``; ``flush()``/``close()`` write what is buffered,
        and it is a context manager.

    Raises:
        RecordError: A bad argument.
    """
    return Recorder(fn, proto, trial, save_condition, batch_size=batch_size, flush_interval=flush_interval)


def load_history(proto: Any, trial: Any) -> list[HistoryEntry]:
    """Return a trial's saved calls in call order (written ones: flush live recorders first)."""
    store: Store = proto.store
    docs = store.find(HISTORY, {"trial": trial_uid_of(trial)}, sort=[("call_number", 1)])
    return [
        HistoryEntry(d["call_number"], d.get("params"), d.get("value"), list(d.get("artifacts") or []), d["time"])
        for d in docs
    ]


def load_call_artifact(proto: Any, trial: Any, call_number: int, name: str) -> Any:
    """Read an artifact a recorded call stored: ``bytes`` as they were, other values unpickled.

    Unpickling runs code: read pickled artifacts only from stores you trust.

    Raises:
        NotFoundError: The call stored no artifact of that name (or it was not saved).
    """
    full = f"calls/{int(call_number)}/{name}"
    info = proto.get_artifact(trial, full)
    data = proto.read_artifact(trial, full)
    if info.media_type == PICKLE_MEDIA_TYPE:
        return pickle.loads(data)  # noqa: S301 - documented: trusted stores only
    return data
