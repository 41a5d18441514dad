"""``track-backends ui`` as a command, and the pieces that need no browser."""

from __future__ import annotations

import math
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import seed
from conftest import ROOT, need_web_stack

from track_backends.ui import data
from track_backends.ui.values import dumps, flatten, json_safe, number

ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def cli(*args: str, code: str = "", timeout: float = 60) -> subprocess.CompletedProcess[str]:
    prog = f"import sys; {code}\nfrom track_backends.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", prog, *args], capture_output=True, text=True, env=ENV, timeout=timeout, cwd=ROOT
    )


def test_importing_the_library_imports_no_web_framework() -> None:
    code = (
        "import sys, track_backends, track_backends.cli, track_backends.ui, track_backends.cli.ui\n"
        "from track_backends.cli import build_parser; build_parser()\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('starlette', 'uvicorn', 'anyio', 'httpx'))\n"
        "assert not bad, bad"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, cwd=ROOT)
    assert r.returncode == 0, r.stderr


def test_help_names_the_defaults() -> None:
    r = cli("ui", "--help")
    assert r.returncode == 0
    assert "127.0.0.1" in r.stdout and "8766" in r.stdout and "track-backends[ui]" in r.stdout


def test_a_missing_store_is_an_error_and_nothing_is_created(tmp_path: Path) -> None:
    path = tmp_path / "missing.pkl"
    r = cli("ui", f"pickled://{path}", "--port", "0")
    assert r.returncode == 2 and "error:" in r.stderr and not path.exists()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    uri = f"pickled://{tmp_path_factory.mktemp('cli') / 's.pkl'}"
    seed.fill(uri)
    return uri


def test_a_taken_port_is_a_one_line_error(store: str) -> None:
    need_web_stack()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        r = cli("ui", store, "--port", str(s.getsockname()[1]))
    assert r.returncode == 2 and "cannot listen on 127.0.0.1:" in r.stderr and "Traceback" not in r.stderr


def test_bad_poll_and_missing_extra(store: str) -> None:
    r = cli("ui", store, "--poll", "0")
    assert r.returncode == 2 and "--poll" in r.stderr
    r = cli("ui", store, "--port", "0", code="sys.modules['uvicorn'] = None")
    assert r.returncode == 2 and "pip install 'track-backends[ui]'" in r.stderr


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGINT, 0), (signal.SIGTERM, -signal.SIGTERM)])
def test_ctrl_c_and_sigterm_stop_it_cleanly(store: str, sig: int, status: int) -> None:
    need_web_stack()
    p = subprocess.Popen(
        [sys.executable, "-m", "track_backends.cli", "ui", store, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        cwd=ROOT,
    )
    assert p.stdout is not None
    line = p.stdout.readline()
    assert "http://127.0.0.1:" in line and "read-only" in line
    p.send_signal(sig)
    _, err = p.communicate(timeout=20)
    assert p.returncode == status and "Traceback" not in err, err


def test_json_safe_values() -> None:
    value: dict[str, Any] = {"a": [math.nan, math.inf, -math.inf, 1.5, True, None], "b": {"c": (1, "x")}}
    assert json_safe(value) == {"a": ["NaN", "Infinity", "-Infinity", 1.5, True, None], "b": {"c": [1, "x"]}}
    assert dumps({"x": math.nan}) == b'{"x":"NaN"}'
    assert flatten({"a": {"b": 1, "c": {}}, "d": [1]}) == {"a.b": 1, "a.c": {}, "d": [1]}
    assert [number(v) for v in (1, 2.5, True, "1", math.nan, math.inf, None)] == [
        1.0,
        2.5,
        None,
        None,
        None,
        None,
        None,
    ]


def test_series_are_sorted_by_step_and_thinned() -> None:
    s = data._series([(2, 1.0), (0, 3.0), (1, math.nan)], 100)
    assert s["steps"] == [0.0, 1.0, 2.0] and s["values"] == [3.0, None, 1.0] and s["gaps"] == 1
    s = data._series([(None, 1.0), ("a", 2.0)], 100)
    assert s["x"] == "index" and s["steps"] == [0, 1]
    s = data._series([(i, float(i)) for i in range(1000)], 100)
    assert s["count"] == 1000 and s["shown"] <= 101 and s["steps"][0] == 0.0 and s["steps"][-1] == 999.0


def test_request_arguments() -> None:
    assert data.parse_query(None) is None and data.parse_query("  ") is None and data.parse_query("{}") is None
    assert data.parse_query('{"a": 1}') == {"a": 1}
    for bad in ("[1]", "{", '"x"'):
        with pytest.raises(data.QueryError):
            data.parse_query(bad)
    assert data.int_arg(None, "page", 0, 0) == 0 and data.int_arg("7", "page", 0, 0) == 7
    for bad in ("-1", "x", "1.5"):
        with pytest.raises(data.BadRequest):
            data.int_arg(bad, "page", 0, 0)
