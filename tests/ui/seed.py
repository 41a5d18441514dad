"""The store the dashboard tests look at: a small sweep with every status, curves and hostile names."""

from __future__ import annotations

import math
from typing import Any

from track_backends import DocumentProtocol, Project, Status, Trial, TrialGroup, get_protocol

XSS = "<script>alert(1)</script>"
XSS_VALUE = "<img src=x onerror=alert(2)>"
LRS = [0.1, 0.03, 0.01, 0.003, 0.001, 0.0003]
STEPS = 25
ARTIFACT = "step,loss\n" + "".join(f"{s},{1.0 / (s + 1)}\n" for s in range(STEPS))
ARTIFACT = ARTIFACT.encode()  # type: ignore[assignment]
XSS_ARTIFACT = "<img src=x onerror=alert(3)>.txt"
"""Points of the ``loss`` curve of each sweep trial."""


def loss(lr: float, step: int) -> float:
    """A loss curve whose minimum is smallest for lr=0.01 (the 'best' trial)."""
    return abs(math.log10(lr) + 2) + 1.0 / (step + 1)


def fill(uri: str) -> dict[str, Any]:
    """Fill the store at ``uri`` (see :func:`fill_protocol`) and close it."""
    with get_protocol(uri) as proto:
        return fill_protocol(proto)


def fill_protocol(proto: DocumentProtocol) -> dict[str, Any]:
    """Fill an empty store and return what the tests expect to see (two artifacts on ``curve``).

    Returns:
        ``{"group", "total", "sweep", "best", "xss", "nan", "curve", "curve_points", "leased"}``:
        uids and counts.
    """
    proto.new_project(Project("mnist", description="digits"))
    group = proto.new_trial_group(TrialGroup("sweep-lr", project_id="mnist", description="a learning-rate sweep"))
    uids = []
    statuses = [Status.Completed, Status.Completed, Status.Completed, Status.Running, Status.Exception,
                Status.Interrupted]  # fmt: skip
    for lr, status in zip(LRS, statuses):
        t = Trial({"lr": lr, "layers": 2, "opt": {"name": "adam", "beta": 0.9}}, project_id="mnist", group_id=group.uid)
        proto.new_trial(t)
        proto.log_trial_metrics_batch(
            t, {"loss": [(s, loss(lr, s)) for s in range(STEPS)], "acc": [(STEPS - 1, 1 - lr)]}
        )
        proto.log_trial_metadata(t, host="node-1")
        proto.set_trial_status(t, status, error="diverged" if status == Status.Exception else None)
        uids.append(t.uid)
    for i in range(3):  # pending, no metrics yet
        proto.new_trial(Trial({"lr": 0.5 + i, "layers": 3}, project_id="mnist", group_id=group.uid))
    leased = proto.reserve_trial({"group_id": group.uid, "parameters.lr": 0.5}, lease=600, owner="worker-7")
    proto.log_trial_chrono_start(leased, "epoch")
    proto.log_trial_chrono_finish(leased, "epoch")
    xss = Trial({XSS: XSS_VALUE, "lr": 0.2}, project_id="mnist", group_id=group.uid)
    proto.new_trial(xss)
    proto.log_trial_metadata(xss, note=XSS)
    proto.log_trial_metrics(xss, step=0, loss=2.5)
    nan = Trial({"lr": float("inf"), "tag": "nan"}, group_id="not-a-stored-group")
    proto.new_trial(nan)
    proto.log_trial_metrics_batch(nan, {"loss": [(0, float("nan")), (1, float("inf")), (2, 1.0)]})
    proto.put_artifact(uids[0], "plots/loss.csv", ARTIFACT, metadata={"rows": STEPS})
    proto.put_artifact(uids[0], XSS_ARTIFACT, b"hostile name")
    hostile = proto.new_trial_group(TrialGroup("<b>bold</b>", project_id="mnist"))
    proto.new_trial(Trial({"lr": 0.4}, project_id="mnist", group_id=hostile.uid))
    return {
        "group": group.uid,
        "total": 12,
        "sweep": 10,  # trials in sweep-lr
        "best": uids[LRS.index(0.01)],
        "xss": xss.uid,
        "nan": nan.uid,
        "curve": uids[0],
        "curve_points": STEPS,
        "leased": leased.uid,
    }
