"""Chaos runs for leased claims: worker processes killed with SIGKILL while they run trials."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from track_backends import Project, Trial, TrialGroup, get_protocol

WORKER = str(Path(__file__).with_name("chaos_worker.py"))
STEPS = 20


def seed(uri: str, n: int, group: str = "chaos") -> str:
    with get_protocol(uri) as proto:
        proto.new_project(Project("chaos"))
        g = proto.new_trial_group(TrialGroup(group, project_id="chaos"))
        for i in range(n):
            proto.new_trial(Trial({"i": i}, project_id="chaos", group_id=g.uid))
        return g.uid


def start_worker(uri: str, group: str, lease: float, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, WORKER, uri, group, str(lease), str(STEPS)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def run_chaos(
    uri: str, *, trials: int = 60, workers: int = 3, kills: int = 6, every: float = 0.5, lease: float = 1.5
) -> dict[str, Any]:
    """Run ``workers`` processes over ``trials`` trials, SIGKILL a random one ``kills`` times, and wait.

    Returns:
        ``{"group": uid, "killed": n, "stderr": [...]}`` once every worker has exited.
    """
    group = seed(uri, trials)
    rng = random.Random(1234)
    procs = [start_worker(uri, group, lease) for _ in range(workers)]
    killed = 0
    deadline = time.monotonic() + 300
    while killed < kills and time.monotonic() < deadline:
        time.sleep(every * rng.uniform(0.6, 1.4))
        alive = [p for p in procs if p.poll() is None]
        if not alive:
            break
        victim = rng.choice(alive)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        killed += 1
        procs.append(start_worker(uri, group, lease))
    errors = []
    for p in procs:
        try:
            _, err = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            _, err = p.communicate()
            errors.append(f"worker {p.pid} did not finish:\n{err}")
            continue
        if p.returncode not in (0, -signal.SIGKILL):
            errors.append(f"worker {p.pid} exited {p.returncode}:\n{err[-2000:]}")
    return {"group": group, "killed": killed, "errors": errors}


def check_outcome(uri: str, group: str, trials: int = 60) -> None:
    """Every trial Completed by exactly one attempt, whose metrics are the trial's, and none Running."""
    with get_protocol(uri) as proto:
        done = proto.fetch_trials({"group_id": group})
        everything = proto.store.fetch_points("trials", [t.uid for t in done])
    assert len(done) == trials
    assert [t.uid for t in done if t.status.name != "Completed"] == []
    for t in done:
        token = t.lease["token"]
        assert t.metrics["loss"] == [(s, float(token * 1000 + s)) for s in range(STEPS)], (t.uid, token)
        assert t.metric_summary["loss"]["count"] == STEPS and t.lease["expires"] is None
        for _, value in everything[t.uid]["loss"]:  # earlier attempts' points are kept, under their token
            assert int(value) // 1000 <= token


SKEWED = str(Path(__file__).with_name("skewed_reserve.py"))


def skewed_reserve(uri: str, group: str, shift: float) -> str:
    """Reserve from a child process whose ``time.time`` is off by ``shift`` seconds; its uid or ``"none"``."""
    out = subprocess.run([sys.executable, SKEWED, uri, group, str(shift)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip()


def check_clock_skew(uri: str) -> None:
    """A client an hour ahead takes no live lease; a client an hour behind still takes a dead one."""
    group = seed(uri, 1, group="skew")
    with get_protocol(uri) as proto:
        live = proto.reserve_trial({"group_id": group}, lease=30)
        assert live is not None
        assert skewed_reserve(uri, group, +3600) == "none"
        proto.heartbeat(live, lease=0.5)
        time.sleep(1.0)
    assert skewed_reserve(uri, group, -3600) == live.uid
