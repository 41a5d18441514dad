"""Serializers of cached values: a small registry of named ways to turn a value into bytes and back.

Built in:

* ``"pickle"``: any picklable value. **Unpickling runs code**: a pickled cache entry can execute
  anything when it is loaded, so read pickled caches only from stores you trust as much as your
  own code (everyone who can write to the store can run code in your process).
* ``"json"``: JSON-like values (``dict`` with ``str`` keys, ``list``, ``str``, numbers, ``bool``,
  ``None``; NaN and infinities included). Tuples come back as lists.
* ``"npy"``: NumPy arrays in the ``.npy`` format, with ``allow_pickle=False`` both ways (object
  arrays are refused). Values are converted with ``numpy.asarray``; they come back as arrays.
  It needs NumPy, which is imported only when this serializer is used.

:func:`register_serializer` adds others; :func:`get_serializer` looks one up by name.
"""

from __future__ import annotations

import io
import json
import pickle
from typing import IO, Any, Protocol, runtime_checkable

from .common import RecordError


@runtime_checkable
class Serializer(Protocol):
    """What a serializer provides: a ``name``, a ``media_type``, ``dump`` and ``load``.

    ``dump`` writes the value to a binary stream (the store's blob upload: write in pieces, the
    value is never held twice); ``load`` reads it back from a binary stream that is not seekable.
    """

    name: str
    media_type: str

    def dump(self, value: Any, stream: IO[bytes]) -> None:
        """Write ``value`` to ``stream``."""

    def load(self, stream: IO[bytes]) -> Any:
        """Read a value from ``stream``."""


class PickleSerializer:
    """``pickle`` (highest protocol). Loading runs code: read only from trusted stores."""

    name = "pickle"
    media_type = "application/x-python-pickle"

    def dump(self, value: Any, stream: IO[bytes]) -> None:
        try:
            pickle.dump(value, stream, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError) as e:
            raise RecordError(f"cannot pickle a value of type {type(value).__name__}: {e}") from e

    def load(self, stream: IO[bytes]) -> Any:
        return pickle.load(stream)  # noqa: S301 - documented: pickled caches come from trusted stores


class JsonSerializer:
    """JSON (UTF-8); NaN and infinities are written as JavaScript's ``NaN`` and ``Infinity``."""

    name = "json"
    media_type = "application/json"

    def dump(self, value: Any, stream: IO[bytes]) -> None:
        text = io.TextIOWrapper(stream, encoding="utf-8", write_through=False)
        try:
            json.dump(value, text, allow_nan=True, separators=(",", ":"))
            text.flush()
        except (TypeError, ValueError) as e:
            raise RecordError(f"cannot store a {type(value).__name__} as JSON: {e}") from e
        finally:
            text.detach()

    def load(self, stream: IO[bytes]) -> Any:
        text = io.TextIOWrapper(stream, encoding="utf-8")
        try:
            return json.load(text)
        finally:
            text.detach()  # leave the stream open: the caller reads it to its end to verify it


def _numpy() -> Any:
    try:
        import numpy
    except ImportError as e:
        raise RecordError("the 'npy' serializer needs NumPy: pip install numpy") from e
    return numpy


class NpySerializer:
    """NumPy ``.npy`` with ``allow_pickle=False``; needs NumPy (imported on first use)."""

    name = "npy"
    media_type = "application/x-npy"

    def dump(self, value: Any, stream: IO[bytes]) -> None:
        np = _numpy()
        try:
            array = np.asarray(value)
            if array.dtype.hasobject:
                raise ValueError("object arrays need pickle, which 'npy' refuses")
            np.lib.format.write_array(stream, array, allow_pickle=False)
        except ValueError as e:
            raise RecordError(f"cannot store a {type(value).__name__} as .npy: {e}") from e

    def load(self, stream: IO[bytes]) -> Any:
        np = _numpy()
        # read_array reads a stream front to back (np.load would seek back after the magic)
        return np.lib.format.read_array(stream, allow_pickle=False)


_SERIALIZERS: dict[str, Serializer] = {}


def register_serializer(serializer: Serializer, *, replace: bool = False) -> None:
    """Make a serializer available by its ``name`` (e.g. to ``cached(..., serializer=name)``).

    Raises:
        RecordError: It lacks ``name``/``dump``/``load``, or the name is taken and ``replace`` is false.
    """
    name = getattr(serializer, "name", None)
    if type(name) is not str or not name or not isinstance(serializer, Serializer):
        raise RecordError(f"a serializer needs a str name, a media_type, dump and load; got {serializer!r:.80}")
    if name in _SERIALIZERS and not replace:
        raise RecordError(f"serializer {name!r} is registered already (pass replace=True to replace it)")
    _SERIALIZERS[name] = serializer


def get_serializer(name: str | Serializer) -> Serializer:
    """Return the serializer registered under ``name`` (a serializer object is returned as it is).

    Raises:
        RecordError: No serializer has that name; the message lists the known ones.
    """
    if not isinstance(name, str):
        if isinstance(name, Serializer):
            return name
        raise RecordError(f"a serializer is a name or a Serializer object, got {name!r:.80}")
    found = _SERIALIZERS.get(name)
    if found is None:
        raise RecordError(f"unknown serializer {name!r}; known: {', '.join(sorted(_SERIALIZERS))}")
    return found


for _builtin in (PickleSerializer(), JsonSerializer(), NpySerializer()):
    register_serializer(_builtin)
