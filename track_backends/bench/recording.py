"""The "record" phase: what the recorder and tracing add to each call, on ``ephemeral:``.

Measured per call of a small function (``sum`` of a 10-float list), best of a few runs:

* ``plain_us``: the bare call (the floor);
* ``saved_us``: a :func:`~track_backends.record.record` call that is saved (``always``), batched
  writes included (``RECORD_CALLS`` calls, then the recorder is closed, all timed);
* ``unsaved_us``: a recorded call that its condition does not save;
* ``trace_off_us``: a :func:`~track_backends.record.trace`-decorated call outside ``tracing``,
  minus the bare call (what tracing costs when it is off);
* ``trace_on_us``: a traced call inside ``tracing`` (the records written at the end included).

Targets: a saved call costs at most 50 µs, an unsaved one at most 20 µs, and tracing that is off
at most 1 µs per call (nothing measurable next to any real function).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ..model import Trial
from ..protocol import DocumentProtocol
from ..registry import open_store

RECORD_CALLS = 20_000
RUNS = 5
TARGETS = (("saved_us", 50.0), ("unsaved_us", 20.0), ("trace_off_us", 1.0))


def _objective(params: list[float]) -> float:
    return sum(params)


def _best(run: Callable[[], None], calls: int) -> float:
    best = float("inf")
    for _ in range(RUNS):
        t0 = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - t0)
    return best / calls * 1e6


def recording_phase(calls: int = RECORD_CALLS) -> dict[str, Any]:
    """Measure the per-call costs listed in the module docstring; see there."""
    from ..record import record, trace, tracing

    params = [0.1 * i for i in range(10)]
    traced = trace(stage="bench")(_objective)
    proto = DocumentProtocol(open_store("ephemeral:"))
    try:
        n = 0

        def fresh_trial() -> Trial:
            nonlocal n
            n += 1
            t = Trial({"record": n})
            proto.new_trial(t)
            return t

        def plain() -> None:
            for _ in range(calls):
                _objective(params)

        def saved() -> None:
            with record(_objective, proto, fresh_trial()) as f:
                for _ in range(calls):
                    f(params)

        def unsaved() -> None:
            with record(_objective, proto, fresh_trial(), save_condition=lambda *_: False) as f:
                for _ in range(calls):
                    f(params)

        def traced_off() -> None:
            for _ in range(calls):
                traced(params)

        def traced_on() -> None:
            with tracing(proto, fresh_trial()):
                for _ in range(calls):
                    traced(params)

        plain_us = _best(plain, calls)
        return {
            "calls": calls,
            "plain_us": plain_us,
            "saved_us": _best(saved, calls),
            "unsaved_us": _best(unsaved, calls),
            "trace_off_us": max(0.0, _best(traced_off, calls) - plain_us),
            "trace_on_us": _best(traced_on, calls),
        }
    finally:
        proto.close()


def check_recording(row: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Compare the record phase with :data:`TARGETS`."""
    from .report import _entry

    if not row:
        return []
    labels = {
        "saved_us": "a saved recorded call, µs",
        "unsaved_us": "a recorded call not saved, µs",
        "trace_off_us": "a traced call with tracing off, extra µs",
    }
    return [
        _entry(row[k] <= bound, "ephemeral", "record", f"{row['calls']:,} calls", f"{labels[k]} <= {bound:g}", row[k])
        for k, bound in TARGETS
    ]


def recording_table(row: dict[str, Any]) -> str:
    """Render the record phase as text."""
    from .report import table

    head = ["calls", "plain µs", "saved µs", "unsaved µs", "trace off +µs", "trace on µs"]
    keys = ("plain_us", "saved_us", "unsaved_us", "trace_off_us", "trace_on_us")
    body = [[f"{row['calls']:,}", *(f"{row[k]:.2f}" for k in keys)]]
    title = "record: per-call cost of record() and @trace on ephemeral: (sum of 10 floats; best of 5 runs)"
    return title + "\n" + table(head, body, left=0)
