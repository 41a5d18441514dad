"""Peer rows: the same workload on Orion's and Optuna's own stores, where they can be imported.

Neither is a dependency; each peer is used only when its package imports (install them in a
separate virtual environment, see ``benchmarks/README.md``). The workloads are the ones of the
peer scripts in ``shared/peers/`` (``orion_bench.py``, ``optuna_bench.py``):

* Orion 0.2.7 (``EphemeralDB``, ``PickledDB``): ``write`` each trial document, ``read`` the
  pending ones, 200 ``write``s of a metric list, ``read_and_write`` until ``None``.
* Optuna (``InMemoryStorage``, ``JournalStorage`` on a file, ``RDBStorage`` on SQLite and, when
  ``$PEER_PG_URI`` is set, on PostgreSQL): ``enqueue_trial`` each trial, ``get_trials`` of the
  WAITING ones, 200 ``set_trial_intermediate_value``, ``_pop_waiting_trial_id`` until ``None``.

Peers have no group query (``-``). Every peer claim scans the pending trials, so each peer runs
only up to its ``max_n`` (Orion's reserve took over 10 minutes at n=4,000).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .workload import GROUP, LOG_OPS, Result, check, result, start, trial_doc

PEER_PG_ENV = "PEER_PG_URI"


@dataclass(frozen=True)
class Peer:
    """One peer store.

    Attributes:
        name: Row label, e.g. ``"optuna-inmemory"``.
        package: The package that must import (``"optuna"`` or ``"orion"``).
        max_n: The largest n it runs at (claims scan, so larger n take too long).
        run: ``run(n, scratch_dir) -> Result``.
    """

    name: str
    package: str
    max_n: int
    run: Callable[[int, str], Result]


def _orion_doc(i: int) -> dict[str, Any]:
    """Orion's own trial document: ours, with Orion's status ``new``."""
    return {**trial_doc(i), "status": {"name": "new", "value": 1}}


_ORION_PENDING = {"group_id": GROUP, "status.name": {"$in": ["new", "interrupted"]}}


def _orion_workload(db: Any, n: int) -> Result:
    db.ensure_index("trials", "uid", unique=True)
    docs = [_orion_doc(i) for i in range(n)]
    t = start()
    for d in docs:
        db.write("trials", d)
    t_insert = time.perf_counter() - t

    t = start()
    found = db.read("trials", _ORION_PENDING)
    query_ms = (time.perf_counter() - t) * 1e3
    check("orion pending query", len(found), n)

    n_log = min(n, LOG_OPS)
    logs = [
        ({"metrics.loss": [[s, 1.0 / (s + 1)] for s in range(i % 50)]}, {"uid": f"h{i:08d}_0"}) for i in range(n_log)
    ]
    t = start()
    for data, query in logs:
        db.write("trials", data, query)
    t_log = time.perf_counter() - t

    got = 0
    t = start()
    while db.read_and_write("trials", _ORION_PENDING, {"status": {"name": "reserved", "value": 2}}) is not None:
        got += 1
    t_claim = time.perf_counter() - t
    check("orion claims", got, n)
    return result(n, t_insert, query_ms, n_log, t_log, t_claim, None)


def _orion_ephemeral(n: int, scratch: str) -> Result:
    from orion.core.io.database.ephemeraldb import EphemeralDB  # type: ignore[import-not-found]

    return _orion_workload(EphemeralDB(), n)


def _orion_pickled(n: int, scratch: str) -> Result:
    from orion.core.io.database.pickleddb import PickledDB  # type: ignore[import-not-found]

    return _orion_workload(PickledDB(host=os.path.join(scratch, "orion.pkl")), n)


def _optuna_workload(storage: Any, n: int) -> Result:
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(storage=storage, study_name=f"{GROUP}-{time.time_ns()}")
    params = [{"lr": 0.001 * i, "batch_size": 256, "id": i} for i in range(n)]
    t = start()
    for p in params:
        study.enqueue_trial(p, skip_if_exists=False)
    t_insert = time.perf_counter() - t

    t = start()
    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    query_ms = (time.perf_counter() - t) * 1e3
    check("optuna waiting trials", len(waiting), n)

    st = study._storage
    ids = [tr._trial_id for tr in waiting[: min(n, LOG_OPS)]]
    t = start()
    for k, tid in enumerate(ids):
        st.set_trial_intermediate_value(tid, k % 50, 1.0 / (k + 1))
    t_log = time.perf_counter() - t

    got = 0
    t = start()
    while study._pop_waiting_trial_id() is not None:
        got += 1
    t_claim = time.perf_counter() - t
    check("optuna claims", got, n)
    return result(n, t_insert, query_ms, len(ids), t_log, t_claim, None)


def _optuna_inmemory(n: int, scratch: str) -> Result:
    from optuna.storages import InMemoryStorage

    return _optuna_workload(InMemoryStorage(), n)


def _optuna_journal(n: int, scratch: str) -> Result:
    from optuna.storages import JournalStorage

    try:
        from optuna.storages.journal import JournalFileBackend
    except ImportError:  # optuna < 4
        from optuna.storages import JournalFileStorage as JournalFileBackend  # type: ignore[attr-defined,no-redef]
    return _optuna_workload(JournalStorage(JournalFileBackend(os.path.join(scratch, "journal.log"))), n)


def _optuna_sqlite(n: int, scratch: str) -> Result:
    from optuna.storages import RDBStorage

    return _optuna_workload(RDBStorage(f"sqlite:///{os.path.join(scratch, 'optuna.db')}"), n)


def _optuna_postgres(n: int, scratch: str) -> Result:
    from optuna.storages import RDBStorage

    return _optuna_workload(RDBStorage(os.environ[PEER_PG_ENV]), n)


PEERS: list[Peer] = [
    Peer("orion-ephemeral", "orion", 1_000, _orion_ephemeral),
    Peer("orion-pickled", "orion", 1_000, _orion_pickled),
    Peer("optuna-inmemory", "optuna", 10_000, _optuna_inmemory),
    Peer("optuna-journal-file", "optuna", 1_000, _optuna_journal),
    Peer("optuna-rdb-sqlite", "optuna", 1_000, _optuna_sqlite),
    Peer("optuna-rdb-postgres", "optuna", 1_000, _optuna_postgres),
]


def importable(package: str) -> bool:
    """True when ``package`` can be imported here (without importing it)."""
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):
        return False


def available_peers() -> tuple[list[Peer], list[str]]:
    """The peers that can run here, and one note per peer that cannot (and why)."""
    found, notes = [], []
    missing = sorted({p.package for p in PEERS if not importable(p.package)})
    if missing:
        notes.append(
            f"peers: {', '.join(missing)} not importable here; install them in a separate venv "
            "(benchmarks/README.md) to get their rows"
        )
    for p in PEERS:
        if p.package in missing:
            continue
        if p.name == "optuna-rdb-postgres" and not os.environ.get(PEER_PG_ENV):
            notes.append(f"peers: {p.name} needs ${PEER_PG_ENV} (a SQLAlchemy URL of a scratch database)")
            continue
        found.append(p)
    return found, notes


def run_peer(peer: Peer, n: int) -> Result:
    """Run ``peer`` once at ``n`` in a scratch directory (removed afterwards)."""
    scratch = tempfile.mkdtemp(prefix=f"track-backends-{peer.name}-")
    try:
        return peer.run(n, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
