"""Leased claims with real worker processes on the journal stores: SIGKILL chaos, SIGTERM, clocks."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from chaos import check_outcome, run_chaos, seed

from track_backends import get_protocol


@pytest.mark.slow
@pytest.mark.parametrize("scheme,name", [("pickled", "store.pkl"), ("file", "store.jsonl")])
def test_chaos_sigkill_workers(tmp_path: Path, scheme: str, name: str) -> None:
    uri = f"{scheme}://{tmp_path}/{name}"
    out = run_chaos(uri)
    assert out["errors"] == []
    assert out["killed"] == 6
    check_outcome(uri, out["group"])


_SLEEPER = """
import sys, time
from track_backends import get_protocol
with get_protocol(sys.argv[1]) as proto:
    trial = proto.reserve_trial({"group_id": sys.argv[2]}, lease=30)
    with proto.run_trial(trial):
        print("running", flush=True)
        time.sleep(60)
"""


def test_sigterm_inside_run_trial_interrupts(tmp_path: Path) -> None:
    uri = f"pickled://{tmp_path}/store.pkl"
    group = seed(uri, 1)
    proc = subprocess.Popen([sys.executable, "-c", _SLEEPER, uri, group], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "running"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    with get_protocol(uri) as proto:
        (doc,) = proto.store.find("trials", {"group_id": group})
        assert doc["status"]["name"] == "Interrupted" and doc["lease"]["expires"] is None
        again = proto.reserve_trial({"group_id": group}, lease=30)
        assert again is not None and again.uid == doc["uid"] and again.fence == 2


def test_keyboard_interrupt_in_a_worker_process(tmp_path: Path) -> None:
    uri = f"file://{tmp_path}/store.jsonl"
    group = seed(uri, 1)
    proc = subprocess.Popen([sys.executable, "-c", _SLEEPER, uri, group], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "running"
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) != 0
    with get_protocol(uri) as proto:
        (doc,) = proto.store.find("trials", {"group_id": group})
        assert doc["status"]["name"] == "Interrupted"
        assert proto.reserve_trial({"group_id": group}) is not None


def test_a_killed_worker_is_recovered_by_requeue(tmp_path: Path) -> None:
    uri = f"pickled://{tmp_path}/store.pkl"
    group = seed(uri, 1)
    code = _SLEEPER.replace("lease=30", "lease=0.5")
    proc = subprocess.Popen([sys.executable, "-c", code, uri, group], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "running"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    time.sleep(0.8)
    with get_protocol(uri) as proto:
        assert proto.requeue_stale() == 1
        (doc,) = proto.store.find("trials", {"group_id": group})
        assert doc["status"]["name"] == "Interrupted"
