"""Every Python example in the README runs as pasted, each in its own process, and type-checks."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
_BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def python_blocks() -> list[str]:
    return _BLOCK.findall(README.read_text(encoding="utf-8"))


def _localised(code: str, tmp: Path) -> str:
    """The example with its ``/tmp/`` paths moved into the test's own directory."""
    return code.replace("/tmp/", f"{tmp}/")


def test_readme_has_examples() -> None:
    assert len(python_blocks()) >= 3


def test_every_example_runs_as_pasted(tmp_path: Path) -> None:
    env = {**os.environ, "TRACK_BACKENDS_DATA_DIR": str(tmp_path / "data")}
    for i, code in enumerate(python_blocks()):
        script = tmp_path / f"example_{i}.py"
        script.write_text(_localised(code, tmp_path), encoding="utf-8")
        proc = subprocess.run(
            [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env
        )
        assert proc.returncode == 0, f"README example {i} failed:\n{code}\n--- stderr ---\n{proc.stderr[-3000:]}"


def test_examples_pass_mypy_strict(tmp_path: Path) -> None:
    if shutil.which("mypy") is None and not _has_module("mypy"):
        pytest.skip("mypy is not installed")
    files = []
    for i, code in enumerate(python_blocks()):
        f = tmp_path / f"example_{i}.py"
        f.write_text(code, encoding="utf-8")
        files.append(str(f))
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--follow-imports=silent", *files],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        # as for an installed package: mypy reads the package's types, and reports only the examples' errors
        env={**os.environ, "MYPYPATH": str(README.parent)},
    )
    assert proc.returncode == 0, proc.stdout[-5000:]


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None
