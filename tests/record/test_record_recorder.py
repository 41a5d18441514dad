"""The call-history recorder: history that survives the process, save conditions, artifacts,
gradients, batching and the exit hook."""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any

import pytest
from record_helpers import run_worker

from track_backends import NotFoundError, Trial, get_protocol
from track_backends.errors import ArtifactError
from track_backends.record import (
    HISTORY,
    HistoryEntry,
    Recorder,
    RecordError,
    always,
    every_nth,
    load_call_artifact,
    load_history,
    record,
)


@pytest.fixture
def trial(proto: Any) -> Trial:
    t = Trial({"recorder": 1})
    proto.new_trial(t)
    return t


WORKER_TRIAL = Trial({"worker": "record"}).uid


@pytest.mark.parametrize("close", ["1", "0"], ids=["closed", "exit-hook"])
def test_history_survives_the_process(journal_uri: str, close: str) -> None:
    run_worker("record", journal_uri, WORKER_TRIAL, "10", "1", close)
    with get_protocol(journal_uri) as p:
        history = load_history(p, WORKER_TRIAL)
    assert [h.call_number for h in history] == list(range(10))
    assert [h.params for h in history] == [[float(i), 1.0] for i in range(10)]
    assert [h.value for h in history] == [i * i + 1.0 for i in range(10)]
    assert all(isinstance(h, HistoryEntry) and h.artifacts == [] and h.time > 0 for h in history)
    assert [h.time for h in history] == sorted(h.time for h in history)


def test_every_nth_saves_only_its_calls_and_numbers_continue(journal_uri: str) -> None:
    run_worker("record", journal_uri, WORKER_TRIAL, "10", "3", "1")
    with get_protocol(journal_uri) as p:
        assert [h.call_number for h in load_history(p, WORKER_TRIAL)] == [0, 3, 6, 9]
        assert [h.params[0] for h in load_history(p, WORKER_TRIAL)] == [0.0, 3.0, 6.0, 9.0]
    # a second process continues after the highest stored call number (9)
    run_worker("record", journal_uri, WORKER_TRIAL, "4", "1", "0")
    with get_protocol(journal_uri) as p:
        history = load_history(p, WORKER_TRIAL)
    assert [h.call_number for h in history] == [0, 3, 6, 9, 10, 11, 12, 13]
    assert [h.params[0] for h in history[4:]] == [0.0, 1.0, 2.0, 3.0]


def test_save_conditions(proto: Any, trial: Trial) -> None:
    seen: list[tuple[Any, Any, int]] = []

    def below_five(value: Any, params: Any, call_number: int) -> bool:
        seen.append((value, params, call_number))
        return bool(value < 5)

    f = record(lambda x: x * 2, proto, trial, below_five, flush_interval=0)
    assert [f(x) for x in range(5)] == [0, 2, 4, 6, 8]
    assert seen == [(0, 0, 0), (2, 1, 1), (4, 2, 2), (6, 3, 3), (8, 4, 4)]
    assert [(h.call_number, h.params, h.value) for h in load_history(proto, trial)] == [(0, 0, 0), (1, 1, 2), (2, 2, 4)]
    assert always(None, None, 0) is True
    cond = every_nth(2)
    assert [cond(None, None, n) for n in range(5)] == [True, False, True, False, True]
    for bad in (0, -1, 1.5, True):
        with pytest.raises(RecordError):
            every_nth(bad)  # type: ignore[arg-type]


def test_store_artifact(proto: Any, trial: Trial) -> None:
    def objective(params: list[float], store_artifact: Any) -> float:
        store_artifact("raw", bytes([int(p) for p in params]))
        store_artifact("state", {"params": params, "tuple": (1, 2)})
        if params[0] == 1:
            store_artifact("forced", b"kept", force=True)
        return sum(params)

    f = record(objective, proto, trial, every_nth(3))
    assert [f([float(i), 2.0]) for i in range(5)] == [2.0, 3.0, 4.0, 5.0, 6.0]
    f.close()
    history = load_history(proto, trial)
    assert [h.call_number for h in history] == [0, 1, 3]  # 1 was forced
    assert history[1].artifacts == ["calls/1/raw", "calls/1/state", "calls/1/forced"]
    assert history[0].params == [0.0, 2.0]  # store_artifact is not a parameter
    names = {a.name for a in proto.list_artifacts(trial)}
    assert names == {f"calls/{n}/{k}" for n in (0, 3) for k in ("raw", "state")} | {
        "calls/1/raw",
        "calls/1/state",
        "calls/1/forced",
    }
    assert load_call_artifact(proto, trial, 3, "raw") == bytes([3, 2])
    assert load_call_artifact(proto, trial, 3, "state") == {"params": [3.0, 2.0], "tuple": (1, 2)}
    assert load_call_artifact(proto, trial, 1, "forced") == b"kept"
    with pytest.raises(NotFoundError):
        load_call_artifact(proto, trial, 2, "raw")  # call 2 was not saved: its artifacts were dropped


def test_bad_artifact_name_raises_in_the_call(proto: Any, trial: Trial) -> None:
    def objective(x: int, store_artifact: Any) -> int:
        store_artifact("../escape", b"x")
        return x

    f = record(objective, proto, trial)
    with pytest.raises(ArtifactError, match="escape"):
        f(1)


class WithGradient:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, params: list[float]) -> float:
        self.calls += 1
        return sum(p * p for p in params)

    def gradient(self, params: list[float]) -> list[float]:
        return [2 * p for p in params]


def test_gradient_is_kept_and_not_recorded(proto: Any, trial: Trial) -> None:
    fn = WithGradient()
    with record(fn, proto, trial) as f:
        assert f([1.0, 2.0]) == 5.0
        assert f.gradient([1.0, 2.0]) == [2.0, 4.0]
        assert f.gradient([3.0]) == [6.0]
        assert f([3.0]) == 9.0
    assert [(h.call_number, h.params, h.value) for h in load_history(proto, trial)] == [
        (0, [1.0, 2.0], 5.0),
        (1, [3.0], 9.0),
    ]
    assert not hasattr(record(lambda x: x, proto, trial), "gradient")


def test_values_are_converted(proto: Any, trial: Trial) -> None:
    np = pytest.importorskip("numpy")

    def f(a: Any, b: Any = 3, *rest: Any, **kw: Any) -> Any:
        return {"arr": np.array([[1.5, np.nan]]), "scalar": np.float32(0.5), "obj": object(), "i": np.int64(7)}

    with record(f, proto, trial) as r:
        r(np.arange(3))
        r(1, b=np.float64(2.0))
        r(1, 2, 3, k="v")
        r(a=5)
    history = load_history(proto, trial)
    assert history[0].params == [0, 1, 2]  # one positional argument: stored as it is
    assert history[1].params == {"a": 1, "b": 2.0}
    assert history[2].params == {"a": 1, "b": 2, "rest": [3], "kw": {"k": "v"}}
    assert history[3].params == {"a": 5}
    value = history[0].value
    assert value["arr"][0][0] == 1.5 and math.isnan(value["arr"][0][1])
    assert value["scalar"] == 0.5 and value["i"] == 7
    assert value["obj"]["type"] == "object" and value["obj"]["repr"].startswith("<object object")


def test_writes_are_batched(proto: Any, trial: Trial) -> None:
    f = record(lambda x: x, proto, trial, batch_size=3, flush_interval=3600)
    assert isinstance(f, Recorder) and f.call_number == 0
    f(1)
    f(2)
    assert proto.store.count(HISTORY, {"trial": trial.uid}) == 0
    f(3)
    assert proto.store.count(HISTORY, {"trial": trial.uid}) == 3
    f(4)
    assert f.flush() == 1 and f.flush() == 0
    assert [h.value for h in load_history(proto, trial)] == [1, 2, 3, 4] and f.call_number == 4
    g = record(lambda x: x, proto, trial, flush_interval=0)  # written at each saved call
    g(5)
    assert proto.store.count(HISTORY, {"trial": trial.uid}) == 5 and g.call_number == 5


def test_bad_arguments(proto: Any, trial: Trial) -> None:
    with pytest.raises(RecordError):
        record(lambda x: x, proto, trial, batch_size=0)
    with pytest.raises(RecordError):
        record(lambda x: x, proto, trial, flush_interval=-1)
    with pytest.raises(RecordError):
        record(lambda x: x, proto, 42)
    with pytest.raises(RecordError):
        record(42, proto, trial)  # type: ignore[arg-type]


def test_history_on_a_file_store(tmp_path: Path) -> None:
    uri = f"file://{tmp_path}/h.jsonl?fsync=false"
    with get_protocol(uri) as p:
        t = Trial({"x": 1})
        p.new_trial(t)
        with record(lambda x: [x, float("nan")], p, t) as r:
            for i in range(3):
                r(i)
    with get_protocol(uri) as p:
        history = load_history(p, t)
    assert [h.params for h in history] == [0, 1, 2]
    assert all(math.isnan(h.value[1]) for h in history)


def test_recorders_nest_and_threads_share_one(proto: Any, trial: Trial) -> None:
    other = Trial({"recorder": 2})
    proto.new_trial(other)
    inner = record(lambda x: x + 1, proto, other, batch_size=7)
    outer = record(inner, proto, trial, every_nth(2), batch_size=5)
    assert outer._fn is inner  # wrapping a recorder does not take over its state
    threads = [threading.Thread(target=lambda: [outer(i) for i in range(50)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    outer.close()
    inner.close()
    assert [h.call_number for h in load_history(proto, other)] == list(range(200))
    assert [h.call_number for h in load_history(proto, trial)] == list(range(0, 200, 2))
