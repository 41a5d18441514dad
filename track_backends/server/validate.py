"""A small JSON Schema validator: the subset the server's route schemas use, and nothing more.

The schemas the server publishes in ``/openapi.json`` are the schemas it enforces: each request
body is checked here before anything reaches the store. Supported keywords: ``type`` (a name or a
list of names), ``properties``, ``required``, ``additionalProperties: false``, ``items``,
``minItems``, ``maxItems``, ``minimum``, ``minLength``, ``maxLength``, ``pattern``,
``additionalProperties`` given as a schema, and ``oneOf`` of schemas (the first that accepts wins).
"""

from __future__ import annotations

import re
from typing import Any

Schema = dict[str, Any]

_TYPES: dict[str, Any] = {
    "object": lambda v: type(v) is dict,
    "array": lambda v: type(v) is list,
    "string": lambda v: type(v) is str,
    "integer": lambda v: type(v) is int,
    "number": lambda v: type(v) in (int, float),
    "boolean": lambda v: type(v) is bool,
    "null": lambda v: v is None,
}


class SchemaError(Exception):
    """A value does not match its schema; ``path`` names the part that does not.

    Attributes:
        path: The JSON path of the offending part, as a tuple of keys and indexes.
    """

    def __init__(self, path: tuple[Any, ...], message: str) -> None:
        where = ".".join(str(p) for p in path) or "the body"
        super().__init__(f"{where}: {message}")
        self.path = path


def _type_name(value: Any) -> str:
    for name, check in _TYPES.items():
        if name != "number" and check(value):
            return name
    return type(value).__name__


def validate(schema: Schema, value: Any, path: tuple[Any, ...] = ()) -> None:
    """Check ``value`` against ``schema``.

    Args:
        schema: A JSON Schema in the supported subset.
        value: A decoded JSON value.
        path: Where ``value`` sits in the body (for messages).

    Raises:
        SchemaError: ``value`` does not match.
    """
    if "oneOf" in schema:
        for option in schema["oneOf"]:
            try:
                validate(option, value, path)
                return
            except SchemaError:
                continue
        raise SchemaError(path, schema.get("description", "matches none of the accepted forms"))
    kinds = schema.get("type")
    if kinds is not None:
        names = (kinds,) if isinstance(kinds, str) else kinds
        if not any(_TYPES[n](value) for n in names):
            raise SchemaError(path, f"expected {' or '.join(names)}, got {_type_name(value)}")
    if type(value) is dict:
        _validate_object(schema, value, path)
    elif type(value) is list:
        _validate_array(schema, value, path)
    elif type(value) is str:
        _validate_string(schema, value, path)
    elif type(value) in (int, float) and "minimum" in schema and not value >= schema["minimum"]:
        raise SchemaError(path, f"must be at least {schema['minimum']}")


def _validate_object(schema: Schema, value: dict[str, Any], path: tuple[Any, ...]) -> None:
    props: dict[str, Schema] = schema.get("properties", {})
    for name in schema.get("required", ()):
        if name not in value:
            raise SchemaError((*path, name), "is required")
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        if key in props:
            validate(props[key], item, (*path, key))
        elif extra is False:
            known = ", ".join(sorted(props)) or "none"
            raise SchemaError(path, f"unknown field {key!r:.60} (known: {known})")
        elif isinstance(extra, dict):
            validate(extra, item, (*path, key))


def _validate_array(schema: Schema, value: list[Any], path: tuple[Any, ...]) -> None:
    if len(value) < schema.get("minItems", 0):
        raise SchemaError(path, f"needs at least {schema['minItems']} items")
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        raise SchemaError(path, f"takes at most {schema['maxItems']} items")
    items = schema.get("items")
    if items is not None:
        for i, item in enumerate(value):
            validate(items, item, (*path, i))


def _validate_string(schema: Schema, value: str, path: tuple[Any, ...]) -> None:
    if len(value) < schema.get("minLength", 0):
        raise SchemaError(path, f"needs at least {schema['minLength']} characters")
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        raise SchemaError(path, f"takes at most {schema['maxLength']} characters")
    if "pattern" in schema and not re.search(schema["pattern"], value):
        raise SchemaError(path, f"must match {schema['pattern']}")
