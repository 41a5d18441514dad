"""What the record package writes moves with its trials and groups: migrate copies it all."""

from __future__ import annotations

from pathlib import Path

from track_backends import Trial, TrialGroup, get_protocol
from track_backends.migrate import migrate
from track_backends.record import cached, get_trace, load_history, record, trace, tracing


@trace(stage="evaluation", result_name="score")
def _score(x: float) -> float:
    return x * 2


def test_migration_keeps_cache_history_and_traces(tmp_path: Path) -> None:
    src_uri, dst_uri = f"pickled://{tmp_path}/src.pkl", f"file://{tmp_path}/dst.jsonl"
    with get_protocol(src_uri) as proto:
        g1, g2 = TrialGroup("g1").uid, TrialGroup("g2").uid
        kept, other = Trial({"keep": 1}, group_id=g1), Trial({"keep": 0}, group_id=g2)
        for t in (kept, other):
            proto.new_trial(t)
            with record(lambda x: x + 1, proto, t) as f:
                f(1)
                f(2)
            with tracing(proto, t):
                _score(3.0)
        calls = []

        @cached(proto, group=TrialGroup("g1"), name="square", serializer="json")
        def square(x: int) -> int:
            calls.append(x)
            return x * x

        @cached(proto, group=TrialGroup("g2"), name="square", serializer="json")
        def square2(x: int) -> int:
            return x * x

        assert square(7) == 49 and square2(7) == 49
    report = migrate(src_uri, dst_uri, query={"parameters.keep": 1, "group_id": g1})
    assert report.verification
    with get_protocol(dst_uri) as dst:
        assert [(e.call_number, e.params, e.value) for e in load_history(dst, kept)] == [(0, 1, 2), (1, 2, 3)]
        assert [r.outputs for r in get_trace(dst, kept)] == [{"score": 6.0}]
        assert load_history(dst, other) == [] and get_trace(dst, other) == []

        @cached(dst, group=TrialGroup("g1"), name="square", serializer="json")
        def square_again(x: int) -> int:
            raise AssertionError("loaded from the migrated cache, not computed")

        assert square_again(7) == 49 and calls == [7]
        assert [d["group"] for d in dst.store.find("cache")] == [g1]  # g2's entry stayed behind
