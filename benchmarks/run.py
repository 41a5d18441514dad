"""Full benchmark run: n = 1k, 10k, 100k on the embedded stores (or the URIs given), with targets.

    python benchmarks/run.py                       # ephemeral:, pickled:, file: in a temp directory
    python benchmarks/run.py ephemeral: --no-gc    # extra arguments go to `track-backends bench`

Writes the JSON report to benchmarks/results/<UTC date>.json and prints the table and the
PASS/MISS lines. Takes about 5 minutes on 2 cores (the journal stores do ~4 fsyncs per trial).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

from track_backends.cli import main

RESULTS = Path(__file__).resolve().parent / "results"


def full_run_args(argv: list[str]) -> list[str]:
    args = ["bench", *argv]
    if "--n" not in argv:
        args += ["--n", "1000,10000,100000"]
    if "--check" not in argv:
        args.append("--check")
    if "--json" not in argv:
        RESULTS.mkdir(exist_ok=True)
        args += ["--json", str(RESULTS / f"{datetime.now(UTC):%Y-%m-%d}.json")]
    return args


if __name__ == "__main__":
    sys.exit(main(full_run_args(sys.argv[1:])))
