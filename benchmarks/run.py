"""Full benchmark run: n = 1k, 10k, 100k, workers 1,2,4, with targets, JSON and a plot.

    python benchmarks/run.py                       # ephemeral:, pickled:, file: in a temporary directory
    python benchmarks/run.py ephemeral: 'postgresql://u:pw@host/scratch' --no-gc
                                                   # extra arguments go to `track-backends bench`

Writes the JSON report to benchmarks/results/<UTC date>.json (and, when matplotlib is
installed, the plot to benchmarks/results/<UTC date>.png), and prints the table and the
PASS/MISS lines. Takes about 12 minutes on 2 cores for the embedded stores (the journal stores
do ~4 fsyncs per trial); a PostgreSQL server adds about 10 minutes, the peers about 5.
"""

from __future__ import annotations

import importlib.util
import sys
from datetime import UTC, datetime
from pathlib import Path

from track_backends.cli import main

RESULTS = Path(__file__).resolve().parent / "results"


def full_run_args(argv: list[str]) -> list[str]:
    """``track-backends bench`` arguments for the full run: ``argv`` plus the defaults it lacks."""
    args = ["bench", *argv]
    stamp = f"{datetime.now(UTC):%Y-%m-%d}"
    if "--n" not in argv:
        args += ["--n", "1000,10000,100000"]
    if "--workers" not in argv:
        args += ["--workers", "1,2,4"]
    if "--check" not in argv:
        args.append("--check")
    if "--json" not in argv:
        RESULTS.mkdir(exist_ok=True)
        args += ["--json", str(RESULTS / f"{stamp}.json")]
    if "--plot" not in argv and importlib.util.find_spec("matplotlib") is not None:
        RESULTS.mkdir(exist_ok=True)
        args += ["--plot", str(RESULTS / f"{stamp}.png")]
    return args


if __name__ == "__main__":
    sys.exit(main(full_run_args(sys.argv[1:])))
