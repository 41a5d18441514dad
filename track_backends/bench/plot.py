"""``--plot``: cost per operation (µs/op) against n, log-log, one line per store.

matplotlib is imported only here, and only when a plot is asked for (``pip install
'track-backends[bench]'``).
"""

from __future__ import annotations

import os
from typing import Any

from .workload import BenchError

PANELS: list[tuple[str, str, bool]] = [
    ("insert_per_s", "insert (µs/op)", True),
    ("claim_per_s", "claim (µs/op)", True),
    ("log_per_s", "metric log, $push (µs/op)", True),
    ("group_query_ms", "group query, 10 pending (µs)", False),
]
"""(metric, panel title, metric is a rate): a rate r becomes 1e6/r µs, a time in ms becomes µs."""


def _import_pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as e:
        raise BenchError(
            f"--plot needs matplotlib ({e}); install it with: pip install 'track-backends[bench]'"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _series(report: dict[str, Any], level: str) -> dict[str, list[dict[str, Any]]]:
    """Rows to draw, by line label: every store at ``level``, the references, and the peers."""
    out: dict[str, list[dict[str, Any]]] = {}
    for r in report["rows"]:
        if r["level"] == level:
            label = r["store"]
        elif r["level"].startswith("ref:"):
            label = f"{r['store']} {r['level']}"
        elif r["level"] == "peer":
            label = f"peer {r['store']}"
        else:
            continue
        out.setdefault(label, []).append(r)
    return out


def _us(row: dict[str, Any], metric: str, rate: bool) -> float | None:
    v = row.get(metric)
    if not v:
        return None
    return 1e6 / v if rate else v * 1e3


def plot_report(report: dict[str, Any], path: str, *, level: str = "store", dpi: int = 80) -> str:
    """Draw µs/op against n (log-log) for insert, claim, metric log and the group query.

    One line per store (at ``level``), dashed for reference rows, dotted markers for peers.

    Args:
        report: What :func:`~track_backends.bench.run` returned (or its JSON, loaded).
        path: Where to write the image (the format follows the extension, e.g. ``.png``).
        level: Which level's rows are drawn for the stores (``"store"`` or ``"protocol"``).
        dpi: Resolution.

    Returns:
        ``path``.

    Raises:
        BenchError: matplotlib is not installed, or the report has nothing to draw.
    """
    plt = _import_pyplot()
    series = _series(report, level)
    if not series:
        raise BenchError("--plot: the report has no rows to draw")
    fig, axes = plt.subplots(2, 2, figsize=(11, 8), sharex=True)
    cmap = plt.get_cmap("tab20")
    colors = {label: cmap(i % 20) for i, label in enumerate(series)}
    peer_markers = iter("sD^vPX*h" * 4)
    markers = {label: next(peer_markers) if label.startswith("peer ") else "o" for label in series}
    for ax, (metric, title, rate) in zip(axes.flat, PANELS, strict=True):
        for label, rows in series.items():
            pts = sorted((r["n"], _us(r, metric, rate)) for r in rows)
            pts = [(n, v) for n, v in pts if v is not None]
            if not pts:
                continue
            style = "--" if " ref:" in label else ":" if label.startswith("peer ") else "-"
            size = 6 if label.startswith("peer ") else 4
            ax.plot(*zip(*pts, strict=True), style, marker=markers[label], ms=size, color=colors[label], label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.set_xlabel("n (trials in the store)")
    handles, labels = [], []
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    meta = report.get("meta", {})
    fig.suptitle(
        f"track-backends bench: cost per operation ({level} level; lower is better)  "
        f"{meta.get('date', '')[:10]}, {meta.get('cpus', '?')} cpus",
        fontsize=11,
    )
    fig.legend(handles, labels, loc="center right", fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0, 0.8, 0.96))
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        plt.close(fig)
        raise BenchError(f"--plot: no directory {directory!r}")
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
