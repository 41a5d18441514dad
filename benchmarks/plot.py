"""Draw one plot from one or more bench JSON reports (e.g. one run per server).

    python benchmarks/plot.py benchmarks/plot.png results/a.json results/b.json

Rows of later reports are appended to the first one's; the date and machine come from the first.
Needs matplotlib (pip install 'track-backends[bench]').
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from track_backends.bench import plot_report


def merge(paths: list[str]) -> dict:
    """One report whose rows are every report's rows, in order."""
    reports = [json.loads(Path(p).read_text()) for p in paths]
    merged = dict(reports[0])
    merged["rows"] = [r for rep in reports for r in rep["rows"]]
    return merged


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    print(plot_report(merge(sys.argv[2:]), sys.argv[1]))
