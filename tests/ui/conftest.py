"""Fixtures for the dashboard: a real ``track-backends ui`` subprocess and a headless Chromium.

The dashboard runs as ``python -m track_backends.cli ui pickled://... --port 0`` on 127.0.0.1
(the OS picks a free port; the command prints its URL), over a ``pickled:`` store that
:mod:`seed` fills. Playwright drives Debian's ``/usr/bin/chromium`` (or ``$TRACK_BACKENDS_CHROMIUM``):
its own browser download cannot reach the network. With ``CI=true`` a missing Starlette, uvicorn,
Playwright or Chromium fails the tests instead of skipping them.
"""

from __future__ import annotations

import hashlib
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import seed

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = os.environ.get("TRACK_BACKENDS_CHROMIUM", "/usr/bin/chromium")
STARTUP_SECONDS = 30
POLL_SECONDS = 1.0
"""The dashboard's refresh interval in these tests (the default is 4 s)."""


def unavailable(reason: str) -> None:
    """Skip, or fail under CI (``CI=true``), when a piece the tests need is missing."""
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(f"{reason} (CI=true: refusing to skip)", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def playwright_expect() -> Any:
    """Playwright's ``expect`` (auto-retrying assertions), or a skip (a failure under CI) without Playwright."""
    try:
        from playwright.sync_api import expect
    except ImportError as e:
        unavailable(f"playwright is not installed: {e}")
    return expect


def need_web_stack() -> None:
    """Starlette and uvicorn (the ``ui`` extra) must import."""
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        unavailable(f"the dashboard's extra is missing (pip install 'track-backends[ui]'): {e}")


@dataclass
class Dashboard:
    """A running ``track-backends ui`` subprocess."""

    url: str
    uri: str
    expected: dict[str, Any]
    proc: subprocess.Popen[str]
    stderr: list[str] = field(default_factory=list)

    def stop(self) -> int:
        """SIGTERM, then wait; return the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


def _pump(stream: Any, into: queue.Queue[str | None], keep: list[str] | None = None) -> None:
    for line in stream:
        into.put(line)
        if keep is not None:
            keep.append(line)
    into.put(None)


def start_dashboard(uri: str, expected: dict[str, Any]) -> Dashboard:
    """Start the dashboard on a free port of 127.0.0.1 and wait until it answers."""
    import httpx

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "track_backends.cli", "ui", uri, "--host", "127.0.0.1", "--port", "0"]
    cmd += ["--poll", str(POLL_SECONDS)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    out: queue.Queue[str | None] = queue.Queue()
    err: queue.Queue[str | None] = queue.Queue()
    d = Dashboard("", uri, expected, proc)
    threading.Thread(target=_pump, args=(proc.stdout, out), daemon=True).start()
    threading.Thread(target=_pump, args=(proc.stderr, err, d.stderr), daemon=True).start()
    deadline = time.monotonic() + STARTUP_SECONDS
    try:
        line = out.get(timeout=STARTUP_SECONDS) or ""
    except queue.Empty:
        line = ""
    if "http://" not in line:
        d.stop()
        pytest.fail(f"the dashboard did not start: {line!r} {''.join(d.stderr)[-2000:]}")
    d.url = line[line.index("http://") :].split()[0]
    while time.monotonic() < deadline:  # listening is not answering: wait for a real response
        try:
            if httpx.get(d.url + "api/config", timeout=2).status_code == 200:
                return d
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    d.stop()
    pytest.fail(f"the dashboard at {d.url} does not answer: {''.join(d.stderr)[-2000:]}")


@pytest.fixture(scope="session")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    """A ``pickled:`` store filled by :func:`seed.fill`: its URI and what the tests expect."""
    path = tmp_path_factory.mktemp("ui-store") / "store.pkl"
    uri = f"pickled://{path}"
    return uri, seed.fill(uri)


@pytest.fixture(scope="session")
def dashboard(seeded: tuple[str, dict[str, Any]]) -> Iterator[Dashboard]:
    """The dashboard over the seeded store, shared by the tests that only read (and it never writes)."""
    need_web_stack()
    journal = Path(seeded[0].removeprefix("pickled://"))
    before = hashlib.sha256(journal.read_bytes()).hexdigest()
    d = start_dashboard(*seeded)
    yield d
    code = d.stop()
    assert hashlib.sha256(journal.read_bytes()).hexdigest() == before, "the dashboard wrote to the store"
    assert code in (0, -signal.SIGTERM), f"exit status {code}: {''.join(d.stderr)[-2000:]}"
    assert "Traceback" not in "".join(d.stderr), "".join(d.stderr)[-4000:]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Chromium driven by Playwright."""
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError as e:
        unavailable(f"playwright is not installed: {e}")
        return
    exe = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    if not exe:
        unavailable(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)")
        return
    with sync_playwright() as p:
        try:
            b = p.chromium.launch(executable_path=exe, headless=True)
        except Error as e:
            unavailable(f"Chromium at {exe} does not start: {str(e)[:500]}")
            return
        yield b
        b.close()


@dataclass
class Watched:
    """A page with everything the browser reported: console messages, page errors, dialogs, requests."""

    page: Any
    base: str
    console: list[tuple[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def open(self, route: str = "") -> None:
        """Go to ``base + route`` and wait until the view has drawn its first data."""
        self.page.goto(self.base + route)
        self.loaded()

    def loaded(self) -> None:
        self.page.wait_for_selector("main[data-loaded=true]", timeout=15_000)

    def problems(self, allowed: Callable[[str], bool] = lambda text: False) -> list[str]:
        """Console errors and warnings, page errors and dialogs, minus the ``allowed`` messages."""
        bad = [f"console.{kind}: {text}" for kind, text in self.console if kind in ("error", "warning")]
        bad += [f"pageerror: {e}" for e in self.errors] + [f"dialog: {m}" for m in self.dialogs]
        return [b for b in bad if not allowed(b)]

    def shot(self, name: str) -> Path:
        """Save a full-page screenshot as a test artifact."""
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


def watch(browser: Any, base: str) -> Iterator[Watched]:
    """A fresh browser context and page on ``base``, with its console and dialogs recorded."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    w = Watched(page, base)
    page.on("console", lambda m: w.console.append((m.type, m.text)))
    page.on("pageerror", lambda e: w.errors.append(str(e)))
    page.on("request", lambda r: w.requests.append(r.url))

    def on_dialog(dialog: Any) -> None:
        w.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    try:
        yield w
    finally:
        context.close()


@pytest.fixture
def ui(browser: Any, dashboard: Dashboard) -> Iterator[Watched]:
    """A watched page on the shared dashboard."""
    yield from watch(browser, dashboard.url)
