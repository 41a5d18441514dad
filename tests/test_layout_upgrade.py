"""Journal files written by the release before metric points moved out of trials open and upgrade."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from track_backends import get_protocol
from track_backends.stores.codecs import FORMAT_VERSION, read_header

FIXTURES = Path(__file__).with_name("fixtures") / "layout1"


@pytest.mark.parametrize("scheme,name", [("pickled", "store.pkl"), ("file", "store.jsonl")])
def test_a_layout_1_journal_opens_upgrades_and_keeps_its_points(tmp_path: Path, scheme: str, name: str) -> None:
    path = tmp_path / name
    shutil.copy(FIXTURES / name, path)
    assert read_header(path.read_bytes())[0]["version"] == 1
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    uri = f"{scheme}://{path}"
    with get_protocol(uri) as proto:
        trials = proto.fetch_trials(sort=[("parameters.i", 1)])
        assert len(trials) == 3
        for i, t in enumerate(trials):
            assert t.metrics["loss"] == [(s, 1.0 / (s + 1 + i)) for s in range(5)]
            assert t.metrics["acc"] == [(s, 0.1 * s) for s in range(5)]
            assert t.metric_summary["loss"] == {
                "count": 5,
                "last": 1.0 / (5 + i),
                "last_step": 4,
                "min": 1.0 / (5 + i),
                "max": 1.0 / (1 + i),
            }
            assert "metrics" not in proto.store.find_one("trials", {"uid": t.uid})
        best = proto.fetch_trials(sort=[("metric_summary.loss.min", 1)], limit=1, metrics=False)
        assert best[0].parameters["i"] == 2
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest, "reading must not rewrite the file"
    with get_protocol(uri) as proto:
        t = proto.fetch_trials({"parameters.i": 0})[0]
        proto.log_trial_metrics(t, step=5, loss=0.01)
    assert read_header(path.read_bytes())[0]["version"] == FORMAT_VERSION
    with get_protocol(uri) as proto:
        t = proto.fetch_trials({"parameters.i": 0})[0]
        assert t.metrics["loss"][-2:] == [(4, 0.2), (5, 0.01)] and t.metric_summary["loss"]["count"] == 6
        assert len(proto.fetch_trials()) == 3
