"""Migrations of a namespace's layout (registered in :data:`.schema.MIGRATIONS`).

Each runs inside the bootstrap transaction, under the namespace's advisory lock, so a namespace
is migrated once, by one process, entirely or not at all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import psycopg
from psycopg import sql

from ...encoding import encode
from ...layout import attempt_of, legacy_points
from ...query import apply_update
from ...query.cache import UPDATES
from ...store import TRIALS
from ..points import check_points
from .functions import create_functions
from .indexes import QUEUE_PATHS, forget_statistics
from .jsonb import dumps
from .series import insert_sql

if TYPE_CHECKING:
    from .schema import Layout

_BATCH = 500
"""Trials converted per round trip."""


def to_layout_2(layout: Layout, conn: psycopg.Connection) -> None:
    """Layout 1 -> 2: points tables beside every collection, trials' metrics moved into them.

    The helper functions are replaced (layout 2 adds the numeric ones of :mod:`.functions`).
    Each trial holding ``metrics`` gets ``metric_summary`` instead (see
    :func:`track_backends.layout.legacy_points`); its points go to the points table under the
    attempt of its current lease. The ``status.name`` key columns lose their statistics (see
    :data:`.indexes.QUEUE_PATHS`).
    """
    if not layout.cockroach:  # the numeric update helpers are new
        create_functions(conn, layout.schema, layout.prefix)
    rows = conn.execute(sql.SQL("SELECT collection, paths, is_unique FROM {}").format(layout.registry)).fetchall()
    names = sorted({r[0] for r in rows})
    for name in names:
        layout.create_points(conn, name)
    if not layout.cockroach:
        queue = sorted({(name, p) for name, paths, unique in rows if not unique for p in paths if p in QUEUE_PATHS})
        for name, path in queue:
            forget_statistics(conn, layout.table(name), path, rebuild=True)
    if TRIALS in names:
        _move_trial_metrics(layout, conn)


def to_layout_3(layout: Layout, conn: psycopg.Connection) -> None:
    """Layout 2 -> 3: the blob tables (artifacts' bytes, see :mod:`.blobstore`); nothing else changes."""
    layout.create_blobs(conn)


def _move_trial_metrics(layout: Layout, conn: psycopg.Connection) -> None:
    """Convert every layout-1 trial, reading them through a server-side cursor in batches."""
    table = layout.table(TRIALS)
    write = sql.SQL("UPDATE {} SET doc = %s::jsonb WHERE uid = %s").format(table).as_string(None)
    insert = insert_sql(layout.points_table(TRIALS))
    with conn.cursor(name="tb_layout_2") as cur:
        cur.execute(sql.SQL("SELECT uid, doc FROM {} WHERE doc ? %s").format(table), ("metrics",))
        while rows := cur.fetchmany(_BATCH):
            docs, batches = [], []
            for uid, doc in rows:
                got = legacy_points(doc)
                if got is None:
                    continue
                points, update = got
                attempt = attempt_of(doc)
                apply_update(doc, UPDATES.get(update))
                docs.append((dumps(encode(doc), owned=True), uid))
                if points:
                    batches.append((uid, attempt, dumps(check_points(points), owned=True)))
            with conn.cursor() as w:
                if docs:
                    w.executemany(write, docs)
                if batches:
                    w.executemany(insert, batches)
