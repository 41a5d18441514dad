"""The "artifacts" phase: artifact upload and download rates against the engine's raw rate.

For one store, an artifact of ``mib`` MiB (random bytes, changed before each upload so that
deduplication never short-cuts it) is stored from a file with ``put_artifact`` and read back to a
file with ``open_artifact`` (verified). The reference does the same copy with the engine's own
tools, without hashing, names or references:

* journals (``ref:copy``): a raw file copy into the store's directory with an fsync (upload),
  and a raw copy of that file out (download);
* PostgreSQL (``ref:COPY``): one binary ``COPY ... FROM STDIN`` of 1 MiB ``bytea`` rows into a
  scratch table in one transaction, and a binary ``COPY ... TO STDOUT`` back;
* MongoDB (``ref:GridFS``): pymongo's ``GridFSBucket.upload_from_stream`` and
  ``open_download_stream``.

The target is 0.5x the reference or better, in both directions. Each timed run starts after an
``os.sync()``, so that the write-back of one copy's output does not slow the next one down.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

from ..layout import ARTIFACTS
from ..model import Trial
from ..protocol import DocumentProtocol
from ..store import Store
from ..uri import StoreURI
from .workload import GROUP, BenchError

CHUNK = 1 << 20
REPEATS = 3
TARGET = 0.5
REFERENCE_NAMES = {"journal": "ref:copy", "postgres": "ref:COPY", "mongo": "ref:GridFS"}


def _source(directory: str, mib: int) -> str:
    fd, path = tempfile.mkstemp(prefix="bench-artifact-", suffix=".bin", dir=directory)
    block = os.urandom(CHUNK)
    with os.fdopen(fd, "wb") as f:
        for i in range(mib):
            f.write(i.to_bytes(8, "little") + block[8:])
    return path


def _copy(src: str, dst: str, fsync: bool) -> None:
    with open(src, "rb") as f, open(dst, "wb") as g:
        while chunk := f.read(CHUNK):
            g.write(chunk)
        if fsync:
            g.flush()
            os.fsync(g.fileno())


def _best_rate(mib: int, fn: Callable[[], Any]) -> float:
    times = []
    for _ in range(REPEATS):
        os.sync()  # the previous copy's dirty pages must not be written back during this one
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return mib / statistics.median(times)


def _journal_reference(directory: str, source: str, mib: int) -> tuple[float, float]:
    copies: list[str] = []
    out = os.path.join(directory, "ref-out.bin")

    def upload() -> None:  # a new file each time, as a content-addressed store writes one
        copies.append(os.path.join(directory, f"ref-copy-{len(copies)}.bin"))
        _copy(source, copies[-1], fsync=True)

    try:
        up = _best_rate(mib, upload)
        down = _best_rate(mib, lambda: _copy(copies[-1], out, fsync=False))
    finally:
        for p in [*copies, out]:
            if os.path.exists(p):
                os.unlink(p)
    return up, down


def _postgres_reference(uri: StoreURI, source: str, directory: str, mib: int) -> tuple[float, float]:
    import psycopg

    from .references import libpq_conninfo

    out = os.path.join(directory, "ref-out.bin")
    with psycopg.connect(libpq_conninfo(uri)) as conn:
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS bench_ref_blob (seq int, data bytea)")
        conn.commit()

        def upload() -> None:
            conn.execute("TRUNCATE bench_ref_blob")
            with (
                conn.cursor() as cur,
                cur.copy("COPY bench_ref_blob (seq, data) FROM STDIN") as copy,
                open(source, "rb") as f,
            ):
                seq = 0
                while chunk := f.read(CHUNK):
                    copy.write_row((seq, chunk))
                    seq += 1
            conn.commit()

        def download() -> None:
            with conn.cursor() as cur, open(out, "wb") as g:
                with cur.copy("COPY (SELECT data FROM bench_ref_blob ORDER BY seq) TO STDOUT (FORMAT BINARY)") as copy:
                    copy.set_types(["bytea"])
                    for (data,) in copy.rows():
                        g.write(data)
            conn.commit()

        try:
            up = _best_rate(mib, upload)
            down = _best_rate(mib, download)
        finally:
            conn.execute("DROP TABLE IF EXISTS bench_ref_blob")
            conn.commit()
            if os.path.exists(out):
                os.unlink(out)
    return up, down


def _mongo_reference(uri: StoreURI, source: str, directory: str, mib: int) -> tuple[float, float]:
    import gridfs
    import pymongo

    from .references import mongo_database

    out = os.path.join(directory, "ref-out.bin")
    client: Any = pymongo.MongoClient(uri.raw, serverSelectionTimeoutMS=5000)
    try:
        db = client[mongo_database(uri)]
        bucket = gridfs.GridFSBucket(db, bucket_name="bench_ref", chunk_size_bytes=CHUNK)
        ids: list[Any] = []

        def upload() -> None:
            with open(source, "rb") as f:
                ids.append(bucket.upload_from_stream("ref.bin", f))

        def download() -> None:
            with bucket.open_download_stream(ids[-1]) as stream, open(out, "wb") as g:
                while chunk := stream.read(CHUNK):
                    g.write(chunk)

        up = _best_rate(mib, upload)
        down = _best_rate(mib, download)
        db.drop_collection("bench_ref.files")
        db.drop_collection("bench_ref.chunks")
    finally:
        client.close()
        if os.path.exists(out):
            os.unlink(out)
    return up, down


def _reference(kind: str, uri: StoreURI, source: str, directory: str, mib: int) -> tuple[float, float] | None:
    """The raw rates of ``kind``'s engine, or ``None`` for kinds without a reference.

    Raises:
        BenchError: The raw copy failed (the driver's error is kept as the cause, never shown
            with the URI's password).
    """
    try:
        if kind == "journal":
            return _journal_reference(directory, source, mib)
        if kind == "postgres":
            return _postgres_reference(uri, source, directory, mib)
        if kind == "mongo":
            return _mongo_reference(uri, source, directory, mib)
    except (OSError, ImportError) as e:
        raise BenchError(f"{REFERENCE_NAMES[kind]} on {uri.redacted} failed: {e}") from e
    except Exception as e:  # noqa: BLE001 - a driver's error: named by type, its text may hold the URI
        raise BenchError(f"{REFERENCE_NAMES[kind]} on {uri.redacted} failed: {type(e).__name__}") from e
    return None


def artifacts_phase(store: Store, uri: StoreURI, kind: str, directory: str, mib: int = 64) -> dict[str, Any]:
    """Measure artifact upload/download MiB/s on an empty store and the engine's raw rate.

    Args:
        store: A fresh store.
        uri: Its URI (the references connect to the same server).
        kind: ``"memory"``, ``"journal"``, ``"postgres"``, ``"mongo"`` or another kind.
        directory: A scratch directory on the disk to use for the source and output files.
        mib: Size of the artifact in MiB.

    Returns:
        ``{"mib", "up_mib_s", "down_mib_s", "reference", "ref_up_mib_s", "ref_down_mib_s",
        "up_ratio", "down_ratio"}`` (reference values ``None`` for kinds without one).
    """
    proto = DocumentProtocol(store)
    trial = Trial({"artifacts": mib}, project_id="p", group_id=GROUP)
    proto.new_trial(trial)
    source = _source(directory, mib)
    out = os.path.join(directory, "bench-artifact-out.bin")
    stored: list[str] = []
    try:

        def upload() -> None:
            with open(source, "r+b") as f:  # new content each time: no deduplication
                f.write(os.urandom(8))
            stored.append(proto.put_artifact(trial, "bench.bin", source).sha256)

        def download() -> None:
            with proto.open_artifact(trial, "bench.bin") as f, open(out, "wb") as g:
                while chunk := f.read(CHUNK):
                    g.write(chunk)

        upload()  # warm-up, untimed: first-use costs (imports, threads, allocator) are not the rate
        download()
        up = _best_rate(mib, upload)
        down = _best_rate(mib, download)
        ref = _reference(kind, uri, source, directory, mib)
    finally:
        for p in (source, out):
            if os.path.exists(p):
                os.unlink(p)
        store.delete(ARTIFACTS, {"trial": trial.uid})  # a server store keeps only what it had
        for sha in stored:
            store.delete_blob(sha)
    return {
        "mib": mib,
        "up_mib_s": up,
        "down_mib_s": down,
        "reference": REFERENCE_NAMES.get(kind),
        "ref_up_mib_s": ref[0] if ref else None,
        "ref_down_mib_s": ref[1] if ref else None,
        "up_ratio": up / ref[0] if ref else None,
        "down_ratio": down / ref[1] if ref else None,
    }


def artifacts_row(target: Any, mib: int, say: Callable[[str], None]) -> dict[str, Any]:
    """Run :func:`artifacts_phase` on a fresh store of a bench target (a ``runner.Target``)."""
    from ..uri import parse_uri

    say(f"{target.label} artifacts ({mib} MiB, up and down)")
    with target.fresh() as (uri, store):
        parsed = parse_uri(uri)
        directory = os.path.dirname(parsed.path) if target.kind == "journal" else tempfile.gettempdir()
        res = artifacts_phase(store, parsed, target.kind, directory, mib)
    return {"store": target.label, "uri": target.uri.redacted, **res}


def check_artifacts(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Compare each store's artifact rates with :data:`TARGET` times its engine's raw rate."""
    from .report import _entry

    out = []
    for r in rows:
        if r["reference"] is None:
            continue
        for way in ("up", "down"):
            v = r[f"{way}_ratio"]
            label = f"artifact {way}load MiB/s / {r['reference']}'s >= {TARGET}"
            out.append(_entry(v >= TARGET, r["store"], "artifacts", f"{r['mib']} MiB", label, v))
    return out


def artifacts_table(rows: list[dict[str, Any]]) -> str:
    """Render the artifacts phase as a text table."""
    from .report import _fmt, table

    head = ["store", "MiB", "reference", "up MiB/s", "ref up", "ratio", "down MiB/s", "ref down", "ratio"]
    body = [
        [
            r["store"],
            str(r["mib"]),
            r["reference"] or "-",
            _fmt(r["up_mib_s"]),
            _fmt(r["ref_up_mib_s"]),
            "-" if r["up_ratio"] is None else f"{r['up_ratio']:.2f}x",
            _fmt(r["down_mib_s"]),
            _fmt(r["ref_down_mib_s"]),
            "-" if r["down_ratio"] is None else f"{r['down_ratio']:.2f}x",
        ]
        for r in rows
    ]
    title = "artifacts: put_artifact from a file and open_artifact to a file (verified), vs the engine's raw copy"
    return title + "\n" + table(head, body)
