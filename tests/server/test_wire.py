"""Unit tests without a server: the wire codec, the schema validator, the OpenAPI document, lazy imports."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
from serve_helpers import child_env

from track_backends import get_protocol
from track_backends.errors import EncodingError, InvalidURIError, QueryError, StoreError
from track_backends.server.openapi import openapi_document
from track_backends.server.routes import BLOB_ROUTES, ROUTES
from track_backends.server.validate import SchemaError, validate
from track_backends.stores.http.errors import ERRORS, error_from, status_of
from track_backends.stores.http.wire import dumps, loads, to_wire


def test_non_finite_floats_and_literal_stand_ins_round_trip() -> None:
    value = {"a": [math.nan, math.inf, -math.inf, 1.5], "t": (1, 2), "lit": {"$n": "NaN"}, "d": {"$n": [1]}}
    wire = dumps(to_wire(value))
    assert b"NaN," not in wire and b"Infinity" in wire  # only inside the stand-in's string
    back = loads(wire)
    assert math.isnan(back["a"][0]) and back["a"][1:] == [math.inf, -math.inf, 1.5]
    assert back["t"] == [1, 2] and back["lit"] == {"$n": "NaN"} and back["d"] == {"$n": [1]}


def test_loads_refuses_what_json_should_not_carry() -> None:
    for bad in (b"NaN", b'{"x": Infinity}', b'{"x": -Infinity}', b"\xff", b'{"$n": "1.0"}', b'{"$n": 1}', b"{"):
        with pytest.raises(QueryError):
            loads(bad)
    with pytest.raises(QueryError, match="too deeply"):
        loads(b"[" * 100_000 + b"]" * 100_000)


def test_to_wire_refuses_values_json_cannot_carry_with_the_stores_error() -> None:
    for bad in (b"x", {1, 2}, object(), {3: "int key"}):
        with pytest.raises(EncodingError):
            to_wire({"v": bad})
        with pytest.raises(QueryError):
            to_wire({"v": bad}, QueryError)
    deep: object = 1
    for _ in range(300):
        deep = [deep]
    with pytest.raises(QueryError, match="100 levels"):
        to_wire(deep, QueryError)
    np = pytest.importorskip("numpy")
    assert to_wire({"v": np.arange(3), "f": np.float32(0.5), "n": np.float64("nan")})["n"] == {"$n": "NaN"}


def test_errors_travel_by_a_fixed_table() -> None:
    assert isinstance(error_from("DuplicateKeyError", "dup"), ERRORS["DuplicateKeyError"])
    for name in ("__class__", "SystemExit", "os.system", None, 3, "KeyError"):
        err = error_from(name, "m")
        assert type(err) is StoreError
    assert status_of(QueryError("x")) == 400 and status_of(ValueError("x")) == 500


def test_validator() -> None:
    schema = {
        "type": "object",
        "properties": {"n": {"type": ["integer", "null"], "minimum": 0}},
        "required": ["n"],
        "additionalProperties": False,
    }
    validate(schema, {"n": 3})
    validate(schema, {"n": None})
    for bad in ({"n": -1}, {"n": True}, {"n": 1.0}, {}, {"n": 1, "m": 2}, [], None):
        with pytest.raises(SchemaError):
            validate(schema, bad)


def test_openapi_lists_exactly_the_routes() -> None:
    doc = openapi_document()
    ops = {op["operationId"] for path in doc["paths"].values() for op in path.values()}
    assert ops == {r.name for r in (*ROUTES, *BLOB_ROUTES)} | {"health"}
    json.dumps(doc, allow_nan=False)
    assert doc["paths"]["/health"]["get"]["security"] == []


def test_uri_checks() -> None:
    for bad in (
        "http://",
        "http://h:1?bogus=1",
        "http://h:1?ca=/x.pem",
        "https://h:1?ca=/no/such.pem",
        "http://:tok%20en@h:1",
    ):
        with pytest.raises(InvalidURIError):
            get_protocol(bad)


def test_import_track_backends_imports_no_web_framework() -> None:
    code = (
        "import sys, track_backends, track_backends.cli, track_backends.server, track_backends.stores.http.wire\n"
        "import track_backends.cli.serve, track_backends.cli.token\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('fastapi', 'starlette', 'uvicorn', 'httpx')]\n"
        "assert not bad, bad\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=child_env())
    assert out.returncode == 0, out.stderr


def test_missing_packages_name_the_extra() -> None:
    code = (
        "import sys\n"
        "sys.modules['httpx'] = None\n"
        "from track_backends import get_protocol\n"
        "from track_backends.errors import DriverNotInstalledError\n"
        "try:\n"
        "    get_protocol('http://127.0.0.1:1')\n"
        "except DriverNotInstalledError as e:\n"
        "    print(e)\n"
        "sys.modules['uvicorn'] = None\n"
        "from track_backends.cli import main\n"
        "sys.exit(main(['serve', 'ephemeral:']))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=child_env())
    assert "track-backends[http]" in out.stdout, out.stdout + out.stderr
    assert out.returncode == 2 and "track-backends[server]" in out.stderr, out.stderr
