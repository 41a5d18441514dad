"""PostgreSQL and CockroachDB store (``postgresql://``, ``postgres://``, ``cockroach://``, ``cockroachdb://``).

Importing this package imports psycopg; the registry does so only when one of these schemes is
first used. The modules, from the bottom up:

* :mod:`.options`: the URI's options, checked once.
* :mod:`.connection`: the pools (a second one for claims, whose sessions always walk the
  index), retries on serialization failures (40001) and deadlocks (40P01), and driver errors
  wrapped into :mod:`track_backends.errors`.
* :mod:`.schema`, :mod:`.indexes`, :mod:`.functions`: the storage layout (one
  ``uid, doc jsonb`` table per collection in the URI's ``schema`` with its table ``prefix``),
  its version and migrations, index columns, and the PL/pgSQL helpers that apply updates.
* :mod:`.jsonb`: how documents are encoded (key order in ``"$o"`` lists, floats kept as floats).
* :mod:`.fragments`, :mod:`.sources`, :mod:`.conditions`, :mod:`.regex`, :mod:`.sort`,
  :mod:`.updates`: the compiler from parsed queries, sorts and updates to parameterised SQL.
* :mod:`.statements`: the statements a store runs, cached per query shape.
* :mod:`.series`: the metric points tables and their SQL; :mod:`.migrations`: layout upgrades.
* :mod:`.blobstore`: the blob primitives (artifacts' bytes).
* :mod:`.core`, :mod:`.series_store`, :mod:`.store`: :class:`PostgresStore` (its pools,
  collections and Python paths; its points primitives; the Store API).

Blobs (the content-addressed bytes behind artifacts) live in the namespace beside the
collections, in ``<prefix>tb$blobs`` (one row per content: sha256, size, time, id) and
``<prefix>tb$blob_chunks`` (its bytes as 1 MiB ``bytea`` rows keyed ``(id, seq)``), created by
layout 3. An upload is one transaction on a connection of its own (``COPY`` on PostgreSQL,
one ``INSERT`` per chunk on CockroachDB), so a failed or killed upload leaves nothing; reads
fetch a chunk per query. On CockroachDB a whole upload is one transaction, untested there.

Indexes: a query that pins every path of an index to strings (``{"group_id": g,
"status.name": {"$in": [...]}}``) is answered through the index. Trials get
``(group_id, status.name)`` and ``hash`` by default.
"""

from .conditions import compile_condition
from .fragments import COCKROACH, POSTGRES, Cond, Dialect, Params
from .jsonb import dumps, loads
from .regex import pg_regex
from .schema import MIGRATIONS
from .store import PostgresStore, from_uri

__all__ = [
    "COCKROACH",
    "MIGRATIONS",
    "POSTGRES",
    "Cond",
    "Dialect",
    "Params",
    "PostgresStore",
    "compile_condition",
    "dumps",
    "from_uri",
    "loads",
    "pg_regex",
]
