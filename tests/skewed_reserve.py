"""Reserve one trial from a process whose clock is off by SHIFT seconds; print its uid or 'none'.

Usage: python skewed_reserve.py URI GROUP SHIFT
"""

import sys
import time

_real_time = time.time
time.time = lambda: _real_time() + float(sys.argv[3])  # this client's clock is wrong

from track_backends import get_protocol  # noqa: E402

with get_protocol(sys.argv[1]) as proto:
    trial = proto.reserve_trial({"group_id": sys.argv[2]}, lease=30)
    print(trial.uid if trial is not None else "none")
