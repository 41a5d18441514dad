"""Stage tracing (after hyrax): what each traced function got and gave, per pipeline stage.

Decorate functions with ``@trace(stage="preprocess")`` and run code inside
``with tracing(proto, trial):``. Each call of a traced function made inside the block becomes a
document of the ``traces`` collection::

    {"uid": "<trial>/<run>/<seq>", "trial": ..., "run": "<block id>", "seq": 3, "parent": 1,
     "stage": "preprocess", "function": "Loader.load", "module": "mypkg.data",
     "params": {"path": "a.csv", "rows": {"shape": [1000, 3], "dtype": "float64", "min": 0.0, "max": 9.5}},
     "outputs": {"result": ...}, "start": 1764489600.0, "duration": 0.012, "error": None}

* ``seq`` numbers the calls of one ``tracing`` block (``run``) in the order they started;
  ``parent`` is the ``seq`` of the traced call this one was made from (``None`` at top level).
* ``params`` holds every bound argument (defaults applied; ``self``/``cls`` left out), or only the
  names given to ``trace(params=[...])``; ``outputs`` holds the result under ``result_name``
  (default ``"result"``). Values are summarised by :func:`~track_backends.record.summary.summarize`:
  arrays by shape, dtype, min and max, never whole.
* ``error`` is ``{"type", "message"}`` when the call raised; the exception propagates.
* Records are buffered and written when the block ends (and every ``batch_size`` records).

Tracing is carried by a :class:`contextvars.ContextVar`: outside a ``tracing`` block a traced
function costs one ``ContextVar.get`` more than the bare call. The block covers the code run in
its context: nested blocks (another trial, say) take over until they end; asyncio tasks created
inside inherit it; threads do not (Python starts them with an empty context) unless they run
``contextvars.copy_context().run(...)``. Coroutine functions are traced up to the coroutine's
creation, not its execution.
"""

from __future__ import annotations

import functools
import inspect
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import Any, Self, TypeVar, overload

from ..layout import TRACES
from ..store import Query, Store
from .common import RecordError, trial_uid_of
from .summary import summarize

F = TypeVar("F", bound=Callable[..., Any])


_STATE: ContextVar[tuple[Tracer, int | None] | None] = ContextVar("track_backends_tracing", default=None)
_SKIPPED = ("self", "cls")
_MAX_MESSAGE = 1000


@dataclass(frozen=True)
class TraceRecord:
    """One traced call, as :func:`get_trace` returns it (see the module docstring for the fields)."""

    seq: int
    stage: str
    function: str
    params: dict[str, Any]
    outputs: dict[str, Any]
    start: float
    duration: float
    error: dict[str, str] | None = None
    parent: int | None = None
    module: str = ""
    run: str = ""
    trial: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def result(self) -> Any:
        """The single output's summary (``None`` if the call raised or recorded several outputs)."""
        return next(iter(self.outputs.values())) if len(self.outputs) == 1 else None

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> TraceRecord:
        """Build from a ``traces`` document."""
        known = {"uid", "seq", "stage", "function", "params", "outputs", "start", "duration", "error", "parent"}
        known |= {"module", "run", "trial"}
        return cls(
            seq=doc["seq"],
            stage=doc["stage"],
            function=doc["function"],
            params=doc.get("params") or {},
            outputs=doc.get("outputs") or {},
            start=doc.get("start", 0.0),
            duration=doc.get("duration", 0.0),
            error=doc.get("error"),
            parent=doc.get("parent"),
            module=doc.get("module", ""),
            run=doc.get("run", ""),
            trial=doc.get("trial", ""),
            extra={k: v for k, v in doc.items() if k not in known},
        )


@dataclass(frozen=True)
class _Traced:
    """What ``trace`` knows about one decorated function."""

    stage: str
    params: tuple[str, ...] | None
    result_name: str
    function: str
    module: str
    signature: inspect.Signature | None


class Tracer:
    """The state of one ``tracing`` block: where records go and those not written yet.

    Made by :func:`tracing`; used as a context manager.
    """

    def __init__(self, proto: Any, trial: Any, batch_size: int = 1000) -> None:
        if type(batch_size) is not int or batch_size < 1:
            raise RecordError(f"batch_size must be a positive int, got {batch_size!r}")
        self.proto, self.trial, self.batch_size = proto, trial_uid_of(trial), batch_size
        self.run = uuid.uuid4().hex[:16]
        self._seq = 0
        self._lock = threading.Lock()
        self._buffer: list[dict[str, Any]] = []
        self._tokens: list[Token[tuple[Tracer, int | None] | None]] = []

    def __enter__(self) -> Self:
        self._tokens.append(_STATE.set((self, None)))
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        _STATE.reset(self._tokens.pop())
        try:
            self.flush()
        except Exception:
            if exc_type is None:
                raise  # otherwise the block's own exception is the one to see

    def flush(self) -> int:
        """Write the buffered records; return how many were written."""
        with self._lock:
            docs, self._buffer = self._buffer, []
        if docs:
            try:
                store: Store = self.proto.store
                store.insert_many(TRACES, docs)
            except BaseException:
                with self._lock:
                    self._buffer[:0] = docs
                raise
        return len(docs)

    def _call(self, fn: Callable[..., Any], info: _Traced, parent: int | None, args: Any, kwargs: Any) -> Any:
        with self._lock:
            seq = self._seq
            self._seq = seq + 1
        doc: dict[str, Any] = {
            "uid": f"{self.trial}/{self.run}/{seq}",
            "trial": self.trial,
            "run": self.run,
            "seq": seq,
            "parent": parent,
            "stage": info.stage,
            "function": info.function,
            "module": info.module,
            "params": _capture(info, args, kwargs),
        }
        token = _STATE.set((self, seq))
        doc["start"] = time.time()
        t0 = time.perf_counter()
        try:
            result = fn(*args, **kwargs)
        except BaseException as e:
            doc["duration"] = time.perf_counter() - t0
            _STATE.reset(token)
            doc["outputs"] = {}
            doc["error"] = {"type": _type_name(type(e)), "message": str(e)[:_MAX_MESSAGE].replace("\x00", "\\0")}
            self._add(doc)
            raise
        doc["duration"] = time.perf_counter() - t0
        _STATE.reset(token)
        doc["outputs"] = {info.result_name: summarize(result)}
        doc["error"] = None
        self._add(doc)
        return result

    def _add(self, doc: dict[str, Any]) -> None:
        with self._lock:
            self._buffer.append(doc)
            full = len(self._buffer) >= self.batch_size
        if full:
            self.flush()

    def __repr__(self) -> str:
        return f"<Tracer run {self.run} for trial {self.trial}>"


def _type_name(t: type) -> str:
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


def _capture(info: _Traced, args: Any, kwargs: Any) -> dict[str, Any]:
    """The call's arguments by name, summarised (only those ``info.params`` lists, if it does)."""
    if info.signature is None:
        return {"args": summarize(list(args)), "kwargs": summarize(kwargs)}
    try:
        bound = info.signature.bind(*args, **kwargs)
    except TypeError:
        return {}  # the call itself will raise, and that is recorded
    bound.apply_defaults()
    arguments = bound.arguments
    if info.params is None:
        return {k: summarize(v) for k, v in arguments.items() if k not in _SKIPPED}
    return {k: summarize(arguments[k]) for k in info.params if k in arguments}


def _check_name(label: str, value: Any) -> str:
    if type(value) is not str or not value or value[0] == "$" or "." in value or "\x00" in value:
        raise RecordError(f"{label} must be a non-empty str without '.', NUL or a leading '$', got {value!r:.80}")
    return value


def _decorate(fn: F, stage: str, params: tuple[str, ...] | None, result_name: str) -> F:
    try:
        signature: inspect.Signature | None = inspect.signature(fn)
    except (TypeError, ValueError):
        signature = None
    if params is not None and signature is not None:
        accepts_any = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
        unknown = [p for p in params if p not in signature.parameters]
        if unknown and not accepts_any:
            raise RecordError(f"trace(params=...) names {unknown}, which {fn.__qualname__} does not take")
    info = _Traced(
        stage=stage,
        params=params,
        result_name=result_name,
        function=getattr(fn, "__qualname__", type(fn).__name__),
        module=getattr(fn, "__module__", None) or "",
        signature=signature,
    )

    @functools.wraps(fn)
    def traced(*args: Any, **kwargs: Any) -> Any:
        state = _STATE.get()
        if state is None:
            return fn(*args, **kwargs)
        return state[0]._call(fn, info, state[1], args, kwargs)

    traced.__traced__ = info  # type: ignore[attr-defined]
    return traced  # type: ignore[return-value]


@overload
def trace(stage: F) -> F: ...


@overload
def trace(
    stage: str = "evaluation", params: Iterable[str] | None = None, result_name: str | None = None
) -> Callable[[F], F]: ...


def trace(
    stage: str | F = "evaluation", params: Iterable[str] | None = None, result_name: str | None = None
) -> F | Callable[[F], F]:
    """Trace a function's calls made inside a :func:`tracing` block (a decorator).

    ``@trace`` alone uses the defaults.

    Args:
        stage: The pipeline stage the function belongs to (``get_trace(..., stage=...)`` filters on it).
        params: Names of the arguments to capture; ``None`` captures every bound argument.
        result_name: The key of the result in ``outputs`` (default ``"result"``).

    Raises:
        RecordError: A bad stage or result name, or ``params`` names an argument the function
            does not take.
    """
    if callable(stage):
        return _decorate(stage, "evaluation", None, "result")
    _check_name("stage", stage)
    names = None
    if params is not None:
        if isinstance(params, str):
            params = [params]
        names = tuple(_check_name("a traced parameter name", p) for p in params)
    result = _check_name("result_name", "result" if result_name is None else result_name)

    def decorate(fn: F) -> F:
        return _decorate(fn, stage, names, result)

    return decorate


def tracing(proto: Any, trial: Any, *, batch_size: int = 1000) -> Tracer:
    """Record the calls of traced functions made inside the ``with`` block, for ``trial``.

    Args:
        proto: The Protocol whose store keeps the records.
        trial: The :class:`~track_backends.model.Trial` or trial uid the records belong to.
        batch_size: Records buffered before a write (all are written when the block ends).

    Returns:
        A :class:`Tracer` to use in a ``with`` statement.
    """
    return Tracer(proto, trial, batch_size)


def get_trace(proto: Any, trial: Any, stage: str | None = None, query: Query = None) -> list[TraceRecord]:
    """Return a trial's trace records in the order the calls started.

    Args:
        proto: The Protocol whose store keeps the records.
        trial: The trial or its uid.
        stage: Only this stage's records.
        query: A MongoDB-style query on the records (e.g. ``{"outputs.result": {"$gt": 0}}`` or
            ``{"error": {"$ne": None}}``), combined with the trial (and stage) filter.

    Raises:
        QueryError: ``query`` is malformed.
    """
    flt: dict[str, Any] = {"trial": trial_uid_of(trial)}
    if stage is not None:
        flt["stage"] = stage
    if query:
        flt = {"$and": [flt, query]}
    store: Store = proto.store
    docs = store.find(TRACES, flt, sort=[("start", 1), ("run", 1), ("seq", 1)])
    return [TraceRecord.from_doc(d) for d in docs]
