"""Recording what experiments do, on every backend: a parameter-keyed cache, a call recorder, tracing.

Built only on the Protocol's artifacts and the Store's documents and blobs, so each feature works
on every store that keeps blobs, and what it records survives the process and is visible from
every worker and machine:

* :mod:`.cache`: ``@cached(proto, group=..., name=None, serializer="pickle")`` computes a
  function once per key (the canonical hash of its arguments) across processes and machines,
  then loads the stored value (collection ``cache``, values as blobs).
* :mod:`.recorder`: ``record(fn, proto, trial, save_condition=always)`` keeps a history of calls
  (collection ``history``); :func:`load_history` reads it back.
* :mod:`.tracing`: ``@trace(stage=...)`` and ``with tracing(proto, trial):`` record each traced
  call's parameters, result summary, duration and error (collection ``traces``);
  :func:`get_trace` reads them.
* :mod:`.serializers`: the serializers of cached values (``pickle``, ``json``, ``npy``).
* :mod:`.summary`: how values become storable (exactly, or summarised).

Importing this package imports neither NumPy nor any driver.
"""

from __future__ import annotations

from .cache import CACHE, Cached, CacheEntry, cached
from .common import RecordError
from .recorder import (
    HISTORY,
    HistoryEntry,
    Recorder,
    StoreArtifact,
    always,
    every_nth,
    load_call_artifact,
    load_history,
    record,
)
from .serializers import Serializer, get_serializer, register_serializer
from .summary import storable, summarize
from .tracing import TRACES, Tracer, TraceRecord, get_trace, trace, tracing

__all__ = [
    "CACHE",
    "HISTORY",
    "TRACES",
    "CacheEntry",
    "Cached",
    "HistoryEntry",
    "RecordError",
    "Recorder",
    "Serializer",
    "StoreArtifact",
    "TraceRecord",
    "Tracer",
    "always",
    "cached",
    "every_nth",
    "get_serializer",
    "get_trace",
    "load_call_artifact",
    "load_history",
    "record",
    "register_serializer",
    "storable",
    "summarize",
    "trace",
    "tracing",
]
