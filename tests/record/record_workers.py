"""Worker processes for the record tests: run as ``python record_workers.py COMMAND ...``.

* ``cache URI COUNTER GO KEYS`` waits for the file GO, then calls the cached ``slow_square`` on each
  of KEYS (a JSON list) and prints the results as JSON. Each real computation appends a line to
  COUNTER.
* ``fail URI COUNTER`` calls the cached ``failing`` once (it raises) and exits 3.
* ``record URI TRIAL N EVERY CLOSE`` records N calls of an objective for TRIAL (every EVERY-th
  saved), closing the recorder only if CLOSE is ``1`` (otherwise it relies on the exit hook).
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from track_backends import Trial, TrialGroup, get_protocol
from track_backends.record import cached, every_nth, record

GROUP = TrialGroup("cache-tests", project_id="record")


def _count(counter: str, what: str) -> None:
    fd = os.open(counter, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{os.getpid()} {what}\n".encode())
    finally:
        os.close(fd)


def cache_main(uri: str, counter: str, go: str, keys: list[Any]) -> None:
    with get_protocol(uri) as proto:

        @cached(proto, group=GROUP, name="slow_square", poll=0.01)
        def slow_square(x: Any) -> dict[str, Any]:
            _count(counter, json.dumps(x))
            time.sleep(0.3)  # long enough for the other process to find the claim
            return {"x": x, "square": x * x if isinstance(x, int) else None, "pid": os.getpid()}

        deadline = time.monotonic() + 30
        while not os.path.exists(go):
            if time.monotonic() > deadline:
                raise SystemExit("no go signal")
            time.sleep(0.002)
        print(json.dumps([slow_square(k) for k in keys]))


def fail_main(uri: str, counter: str) -> None:
    with get_protocol(uri) as proto:

        @cached(proto, group=GROUP, name="failing")
        def failing(x: int) -> int:
            _count(counter, "fail")
            raise RuntimeError("boom")

        try:
            failing(1)
        except RuntimeError:
            raise SystemExit(3) from None


def objective(params: list[float]) -> float:
    return sum(p * p for p in params)


def record_main(uri: str, trial_uid: str, n: int, every: int, close: bool) -> None:
    proto = get_protocol(uri)
    trial = Trial({"worker": "record"})
    assert trial.uid == trial_uid
    proto.new_trial(trial)
    recorder = record(objective, proto, trial, every_nth(every), batch_size=1000, flush_interval=3600)
    for i in range(n):
        recorder([float(i), 1.0])
    if close:
        recorder.close()
        proto.close()
    # otherwise: exit with entries still buffered; the atexit hook must write them


if __name__ == "__main__":
    cmd, *rest = sys.argv[1:]
    if cmd == "cache":
        cache_main(rest[0], rest[1], rest[2], json.loads(rest[3]))
    elif cmd == "fail":
        fail_main(rest[0], rest[1])
    elif cmd == "record":
        record_main(rest[0], rest[1], int(rest[2]), int(rest[3]), rest[4] == "1")
    else:
        raise SystemExit(f"unknown command {cmd}")
