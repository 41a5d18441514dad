"""Stage tracing: what is recorded inside ``tracing`` (and nothing outside), summaries, errors,
nesting, threads and queries."""

from __future__ import annotations

import contextvars
import threading
from pathlib import Path
from typing import Any

import pytest

from track_backends import QueryError, Trial, get_protocol
from track_backends.record import TRACES, RecordError, TraceRecord, get_trace, summarize, trace, tracing


@pytest.fixture
def trial(proto: Any) -> Trial:
    t = Trial({"tracing": 1})
    proto.new_trial(t)
    return t


@trace(stage="load", params=["path"], result_name="rows")
def load(path: str, verbose: bool = False) -> list[int]:
    return list(range(5))


@trace(stage="preprocess")
def scale(rows: list[int], factor: float = 2.0) -> list[float]:
    return [r * factor for r in rows]


@trace(stage="evaluation", result_name="score")
def evaluate(path: str) -> float:
    return sum(scale(load(path)))


@trace
def plain(x: int) -> int:
    return x + 1


@trace(stage="evaluation")
def fails(x: int) -> int:
    raise ValueError(f"bad input {x}")


class Model:
    @trace(stage="fit")
    def fit(self, data: list[int], epochs: int = 1) -> str:
        return "fitted"


def test_stages_params_results_and_nesting(proto: Any, trial: Trial) -> None:
    with tracing(proto, trial):
        assert evaluate("data.csv") == 20.0
        assert plain(1) == 2
        assert Model().fit([1, 2]) == "fitted"
    records = get_trace(proto, trial)
    assert all(isinstance(r, TraceRecord) for r in records)
    assert [(r.seq, r.stage, r.function, r.parent) for r in records] == [
        (0, "evaluation", "evaluate", None),
        (1, "load", "load", 0),
        (2, "preprocess", "scale", 0),
        (3, "evaluation", "plain", None),
        (4, "fit", "Model.fit", None),
    ]
    ev, ld, sc, pl, fit = records
    assert ev.params == {"path": "data.csv"} and ev.outputs == {"score": 20.0} and ev.result == 20.0
    assert ld.params == {"path": "data.csv"}  # only the listed parameter
    assert ld.outputs == {"rows": [0, 1, 2, 3, 4]}
    assert sc.params == {"rows": [0, 1, 2, 3, 4], "factor": 2.0}  # defaults applied
    assert pl.outputs == {"result": 2} and pl.module == __name__
    assert fit.params == {"data": [1, 2], "epochs": 1}  # self is left out
    assert all(r.error is None and r.duration >= 0 and r.start > 0 for r in records)
    assert ev.duration >= ld.duration and ev.start <= ld.start <= sc.start
    assert len({r.run for r in records}) == 1 and all(r.trial == trial.uid for r in records)


def test_nothing_is_recorded_outside_tracing(proto: Any, trial: Trial) -> None:
    assert evaluate("x") == 20.0 and plain(2) == 3
    with tracing(proto, trial):
        pass
    assert evaluate("x") == 20.0
    assert proto.store.count(TRACES) == 0 and get_trace(proto, trial) == []
    assert plain.__name__ == "plain" and plain.__wrapped__ is not None  # type: ignore[attr-defined]


def test_arrays_are_summarised_never_stored_whole(proto: Any, trial: Trial) -> None:
    np = pytest.importorskip("numpy")

    @trace(stage="features", result_name="matrix")
    def features(x: Any, weights: Any) -> Any:
        return np.outer(x, weights)

    x = np.linspace(-1.0, 3.0, 100_000)
    with tracing(proto, trial):
        features(x, np.array([1, 2], dtype=np.int32))
    (rec,) = get_trace(proto, trial)
    assert rec.params["x"] == {"shape": [100_000], "dtype": "float64", "min": -1.0, "max": 3.0}
    assert rec.params["weights"] == {"shape": [2], "dtype": "int32", "min": 1, "max": 2}
    assert rec.outputs["matrix"] == {"shape": [100_000, 2], "dtype": "float64", "min": -2.0, "max": 6.0}
    doc = proto.store.find_one(TRACES, {})
    assert len(repr(doc)) < 2000  # nothing of the size of the arrays was stored


def test_summaries_of_other_values() -> None:
    np = pytest.importorskip("numpy")
    assert summarize("x" * 1000) == {"truncated": "x" * 200, "length": 1000}
    assert summarize(list(range(100))) == {"items": list(range(20)), "length": 100}
    assert summarize((1, "a")) == [1, "a"]
    assert summarize({"a": {"b": {"c": {"d": {"e": 1}}}}}) == {
        "a": {"b": {"c": {"d": {"type": "dict", "length": 1, "keys": ["e"]}}}}
    }
    assert summarize({"x.y": 1, "$z": 2, 3: 4}) == {"x_y": 1, "_$z": 2, "3": 4}
    assert summarize(b"abc") == {"type": "bytes", "length": 3}
    assert summarize(np.float32(1.5)) == 1.5 and summarize(np.int64(3)) == 3 and summarize(np.array(2.0)) == 2.0
    assert summarize(np.array([], dtype=float)) == {"shape": [0], "dtype": "float64", "min": None, "max": None}
    nan = summarize(np.array([np.nan, 1.0]))
    assert nan["shape"] == [2] and nan["min"] != nan["min"]  # NaN is a storable value
    assert summarize(np.array(["a", "b"]))["dtype"] == "<U1"
    other = summarize(Model())
    assert other["type"] == f"{__name__}.Model" and other["repr"].startswith("<")
    assert summarize(2**70) == {"type": "int", "repr": str(2**70)}
    assert summarize(float("inf")) == float("inf") and summarize(None) is None


class ArrayLike:
    shape = (2, 2)
    dtype = "custom"

    def min(self) -> float:
        return -1.0

    def max(self) -> float:
        return 1.0


def test_array_likes_are_summarised_by_their_attributes() -> None:
    assert summarize(ArrayLike()) == {"shape": [2, 2], "dtype": "custom", "min": -1.0, "max": 1.0}


def test_exception_is_recorded_and_reraised(proto: Any, trial: Trial) -> None:
    with tracing(proto, trial):
        with pytest.raises(ValueError, match="bad input 3"):
            fails(3)
        plain(0)
    failed, ok = get_trace(proto, trial)
    assert failed.error == {"type": "ValueError", "message": "bad input 3"} and failed.outputs == {}
    assert failed.params == {"x": 3} and ok.error is None


def test_block_exception_still_flushes(proto: Any, trial: Trial) -> None:
    with pytest.raises(KeyError):
        with tracing(proto, trial):
            plain(1)
            raise KeyError("out")
    assert [r.function for r in get_trace(proto, trial)] == ["plain"]


def test_get_trace_with_stage_and_query(proto: Any, trial: Trial) -> None:
    other = Trial({"tracing": 2})
    proto.new_trial(other)
    with tracing(proto, trial):
        for x in range(4):
            plain(x)
        evaluate("p")
        with pytest.raises(ValueError):
            fails(1)
    with tracing(proto, other):
        plain(10)
    assert [r.function for r in get_trace(proto, trial, stage="load")] == ["load"]
    big = get_trace(proto, trial, query={"outputs.result": {"$gte": 3}})  # an array matches by its elements
    assert [r.outputs["result"] for r in big] == [3, 4, [0.0, 2.0, 4.0, 6.0, 8.0]]
    assert [r.outputs["result"] for r in get_trace(proto, trial, "evaluation", {"outputs.result": {"$gte": 3}})] == [
        3,
        4,
    ]
    assert [r.function for r in get_trace(proto, trial, query={"error": {"$ne": None}})] == ["fails"]
    assert [r.function for r in get_trace(proto, trial, stage="evaluation", query={"parent": None})] == [
        "plain",
        "plain",
        "plain",
        "plain",
        "evaluate",
        "fails",
    ]
    assert [r.params for r in get_trace(proto, trial, query={"params.x": 2})] == [{"x": 2}]
    assert [r.outputs for r in get_trace(proto, other)] == [{"result": 11}]  # the trial filter holds
    assert get_trace(proto, other, query={"function": "fails"}) == []
    with pytest.raises(QueryError):
        get_trace(proto, trial, query={"seq": {"$bogus": 1}})


def test_nested_blocks_and_threads(proto: Any, trial: Trial) -> None:
    other = Trial({"tracing": 3})
    proto.new_trial(other)
    results: list[int] = []
    with tracing(proto, trial) as outer:
        plain(1)
        with tracing(proto, other):
            plain(2)  # the inner block takes over
        plain(3)
        # a plain thread starts with an empty context: not traced
        t = threading.Thread(target=lambda: results.append(plain(4)))
        t.start()
        t.join()
        # a thread that runs in a copy of this context is traced, into the same block
        ctx = contextvars.copy_context()
        t = threading.Thread(target=lambda: results.append(ctx.run(plain, 5)))
        t.start()
        t.join()
        assert outer.flush() == 3
    assert results == [5, 6]
    assert [r.params["x"] for r in get_trace(proto, trial)] == [1, 3, 5]
    assert [r.seq for r in get_trace(proto, trial)] == [0, 1, 2]
    assert [r.params["x"] for r in get_trace(proto, other)] == [2]


def test_several_blocks_keep_their_order(tmp_path: Path) -> None:
    uri = f"file://{tmp_path}/t.jsonl?fsync=false"
    t = Trial({"x": 1})
    with get_protocol(uri) as p:
        p.new_trial(t)
        for i in range(3):
            with tracing(p, t, batch_size=2):
                plain(i)
                plain(i + 10)
                plain(i + 20)
    with get_protocol(uri) as p:
        records = get_trace(p, t)
    assert [r.params["x"] for r in records] == [0, 10, 20, 1, 11, 21, 2, 12, 22]
    assert len({r.run for r in records}) == 3


def test_bad_trace_arguments() -> None:
    with pytest.raises(RecordError):
        trace(stage="")
    with pytest.raises(RecordError):
        trace(stage="a.b")
    with pytest.raises(RecordError):
        trace(result_name="$x")
    with pytest.raises(RecordError, match="does not take"):
        trace(params=["nope"])(lambda x: x)
    trace(params=["anything"])(lambda **kw: kw)  # a function taking **kwargs may receive it
    with pytest.raises(RecordError):
        tracing(None, "t", batch_size=0)
