"""Time ``track-backends export`` of 100,000 trials to Parquet (and CSV, JSON lines) on ``pickled:``.

    python benchmarks/export_timing.py                 # 100,000 trials, Parquet, CSV and JSON lines
    python benchmarks/export_timing.py --n 10000 --formats parquet

Builds a ``pickled:`` store in a temporary directory with ``n`` trials of a sweep (4 parameters,
one of them nested, and a ``loss`` and an ``acc`` summary each), inserted in batches of 10,000
(untimed), then times, in a fresh process each, the whole command ``track-backends export URI
-o PATH`` (opening the store, i.e. replaying its journal, included) and, in this process, the
``export()`` call alone on an open store. Target: Parquet of 100,000 trials in at most 10 s.
Peak memory (the child's maximum resident set) is printed too, next to that of ``ls --limit 1``,
which opens the same store: ``pickled:`` holds the whole store in memory, the export adds one page.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from track_backends import Status, Trial, get_protocol  # noqa: E402
from track_backends.see import export  # noqa: E402

TARGET_S = 10.0


def fill(uri: str, n: int, batch: int = 10_000) -> None:
    """Store ``n`` completed trials with parameters and metric summaries (one ``insert_many`` per batch)."""
    with get_protocol(uri) as proto:
        for start in range(0, n, batch):
            docs = []
            for i in range(start, min(n, start + batch)):
                t = Trial(
                    {"lr": 10 ** -(1 + i % 5), "batch": 32 * (1 + i % 4), "opt": {"name": "adam", "beta": 0.9}, "i": i},
                    project_id="bench",
                    group_id="sweep",
                    status=Status.Completed,
                    metadata={"start_time": 1.7e9 + i, "end_time": 1.7e9 + i + 60.0},
                )
                loss = 1.0 / (1 + i % 97)
                t.metric_summary = {
                    "loss": {"count": 100, "last": loss, "last_step": 99, "min": loss, "max": 2.0},
                    "acc": {"count": 10, "last": 0.5, "last_step": 9, "min": 0.1, "max": 0.9},
                }
                docs.append(t.to_doc())
            proto.store.insert_many("trials", docs)


CHILD = (
    "import resource, sys\n"
    "from track_backends.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "u = resource.getrusage(resource.RUSAGE_SELF)\n"
    "print(u.ru_utime + u.ru_stime, u.ru_maxrss, file=sys.stderr)\n"
    "sys.exit(code)\n"
)
"""Runs the command line, then prints its CPU seconds and peak resident set size (KiB) on stderr."""


def time_cli(uri: str, *args: str) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak resident MiB of ``track-backends ARGS`` in a fresh process.

    CPU seconds (user + system) show the cost on a loaded machine, where wall time also counts waiting.
    """
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, *args], check=True, env=env, capture_output=True, text=True)
    took = time.perf_counter() - t0
    cpu, rss = proc.stderr.split()[-2:]
    return took, float(cpu), int(rss) / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--formats", default="parquet,csv,jsonl")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"pickled://{tmp}/store.pkl?fsync=false"
        t0 = time.perf_counter()
        fill(uri, args.n)
        size = os.path.getsize(f"{tmp}/store.pkl") / 2**20
        print(f"filled {args.n} trials in {time.perf_counter() - t0:.1f} s ({size:.0f} MiB journal)")
        t0 = time.perf_counter()
        with get_protocol(uri) as proto:
            proto.store.count("trials")
            print(f"open (journal replay) in this process: {time.perf_counter() - t0:.2f} s")
            for fmt in args.formats.split(","):
                out = f"{tmp}/trials.{fmt}"
                t0 = time.perf_counter()
                result = export(proto, out, format=fmt)
                took = time.perf_counter() - t0
                print(
                    f"export() {fmt:8s} {result.rows} rows x {len(result.columns)} columns: {took:.2f} s "
                    f"({result.rows / took:,.0f} trials/s, {os.path.getsize(out) / 2**20:.1f} MiB)"
                )
        took, cpu, base = time_cli(uri, "ls", uri, "--limit", "1")
        print(f"track-backends ls --limit 1 (opens the store): {took:.2f} s ({cpu:.2f} s CPU), {base:.0f} MiB")
        for fmt in args.formats.split(","):
            took, cpu, peak = time_cli(uri, "export", uri, "-o", f"{tmp}/cli.{fmt}", "-q")
            verdict = ""
            if fmt == "parquet":
                verdict = f" {'PASS' if took <= TARGET_S else 'MISS'} (target {TARGET_S:.0f} s)"
            rss = f"peak RSS {peak:.0f} MiB (+{peak - base:.0f})"
            print(f"track-backends export -o cli.{fmt}: {took:.2f} s ({cpu:.2f} s CPU), {rss}{verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
