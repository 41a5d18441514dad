"""A chaos worker: reserve trials of one group and run each for STEPS logged steps, until all are done.

Usage: python chaos_worker.py URI GROUP LEASE STEPS [CLOCK_SHIFT]
Each point's value is ``token * 1000 + step``, so a test can tell which attempt logged it.
"""

import sys
import time

shift = float(sys.argv[5]) if len(sys.argv) > 5 else 0.0
if shift:
    _real_time = time.time
    time.time = lambda: _real_time() + shift  # a client whose clock is wrong

from track_backends import get_protocol  # noqa: E402


def main() -> None:
    uri, group, lease, steps = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    with get_protocol(uri) as proto:
        while True:
            trial = proto.reserve_trial({"group_id": group}, lease=lease)
            if trial is None:
                if proto.store.count("trials", {"group_id": group, "status.name": {"$ne": "Completed"}}) == 0:
                    return
                time.sleep(0.05)  # others hold the rest: wait for them to finish or their leases to expire
                continue
            with proto.run_trial(trial):
                for step in range(steps):
                    proto.log_trial_metrics(trial, step=step, loss=float(trial.fence * 1000 + step))
                    time.sleep(0.01)


if __name__ == "__main__":
    main()
