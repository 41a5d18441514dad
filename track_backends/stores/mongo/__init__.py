"""MongoDB stores: ``mongodb://`` and ``mongodb+srv://`` (pymongo), and ``mongomock://`` (in process).

One class, :class:`MongoStore`, serves all three: it wraps a ``pymongo.MongoClient`` or a
``mongomock.MongoClient``. Importing this package imports neither driver; each factory imports
its own, so ``mongomock://`` works without pymongo and a missing driver raises
:class:`~track_backends.errors.DriverNotInstalledError` naming the pip extra.

What the store adds to the driver:

* **One query language.** Every query, update, sort and projection is validated by
  :mod:`track_backends.query` (and cached by its exact text) before anything is sent, so a
  malformed query raises the same :class:`~track_backends.errors.QueryError` as on every other
  backend and never reaches the server (:mod:`.translate`).
* **Indexes.** The first write to a collection creates a unique index on ``uid`` and the
  collection's :data:`~track_backends.store.DEFAULT_INDEXES`, in one round trip (:mod:`.indexes`).
* **Atomic claims.** :meth:`MongoStore.find_one_and_update` is one ``findAndModify``, atomic on
  any deployment.
* **Errors.** Duplicate keys raise :class:`~track_backends.errors.DuplicateKeyError`; an
  unreachable server :class:`~track_backends.errors.StoreUnavailableError` within the
  ``serverSelectionTimeoutMS`` bound (5 s unless the URI says otherwise), in one short line
  naming the hosts tried; an update the server refuses (``$inc`` of a string)
  :class:`~track_backends.errors.QueryError`; any other driver error
  :class:`~track_backends.errors.StoreError`, with the driver's exception as the cause and the
  password masked in every message (:mod:`.errors`).

* **Metric points** beside the documents, in bounded bucket documents of ``<collection>_points``
  (at most 1,000 points and about 4 MB each, so MongoDB's 16 MB limit is never reached), written
  with at most three round trips per batch and read by name, step range or last points
  (:mod:`.series`, :mod:`.bucketing`). Deleting documents deletes their points.
* **Layout upgrade.** A database written by the release that kept points inside trials
  (layout 1) is converted once, idempotently, when a store first touches ``trials``; the layout
  is recorded in ``tb_meta`` (:mod:`.upgrade`).
* **Blobs** (the bytes behind artifacts) in GridFS: one bucket ``blobs`` (``blobs.files``,
  ``blobs.chunks``), one file per content named by its sha256, so any GridFS client can read
  them. An upload writes its 1 MiB chunks under a temporary id, one at a time, and the files
  document last, which makes the blob visible; a unique index on the file name keeps a content
  once when uploads race. A killed upload leaves only chunks without a files document, never
  listed, and removed by ``clean_uploads`` (``track-backends gc``). Reads stream through
  pymongo's ``GridOut`` (on ``mongomock://`` too, which then needs pymongo) (:mod:`.gridblobs`).

Modules: :mod:`.drivers` (pymongo and mongomock adapters), :mod:`.errors`, :mod:`.translate`
(queries, updates, projections), :mod:`.emulate` (``$min``/``$max`` on mongomock), :mod:`.uri`
(URIs, client options, database names), :mod:`.indexes`, :mod:`.series` and :mod:`.bucketing`
(metric points), :mod:`.upgrade` (document layouts), :mod:`.gridblobs` (blobs), :mod:`.store`
(:class:`MongoStore`), :mod:`.factories` (the registry's factories).
"""

from .factories import from_uri, mongomock_from_uri
from .store import MongoStore
from .uri import DEFAULT_CLIENT_OPTIONS, DEFAULT_DATABASE, check_database_name

__all__ = [
    "DEFAULT_CLIENT_OPTIONS",
    "DEFAULT_DATABASE",
    "MongoStore",
    "check_database_name",
    "from_uri",
    "mongomock_from_uri",
]
