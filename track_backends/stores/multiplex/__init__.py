"""The multiplexer: one primary store, mirrored to any number of other stores.

:class:`MultiplexStore` is a :class:`~track_backends.store.Store` over Stores, so the Protocol
stays written once: :class:`~track_backends.multiplexer.ProtocolMultiplexer` is
``DocumentProtocol(MultiplexStore(...))``.

* **Reads, queries and claims** (``find``, ``count``, ``find_one_and_update``, hence every
  ``get_*``, ``fetch_*`` and ``fetch_and_update_*``) run on the primary only. A claim is decided
  once, by the primary, and its result is mirrored, so the stores can never hand out different
  trials.
* **Mirroring**: after every write the primary has accepted, each document the write touched is
  re-read from the primary and written whole to every mirror, by uid: inserted if the mirror
  lacks it, brought in line field by field (``$set`` of changed top-level fields, ``$unset`` of
  fields the primary no longer has) if it differs, deleted if the primary no longer has it. A
  mirror therefore converges to the primary's current state, whatever it missed before.
* **Which documents a write touched**: ``insert*`` and ``find_one_and_update`` know their uids.
  An ``update`` or ``delete`` whose query pins ``uid`` to a string (every Protocol write) touches
  at most that uid. Any other ``update``/``delete`` first finds the matching uids on the primary,
  then runs restricted to them (``{"$and": [query, {"uid": {"$in": found}}]}``; a single update
  retries when its document stopped matching in between). Caveat: with concurrent writers, a
  document that starts to match between the two steps is left out, as if the write had happened
  just before it changed.
* **Order**: the mirroring step of each write runs under a lock (a thread lock, plus an ``flock``
  on ``<outbox>.mirrors.lock`` that every process sharing the outbox takes) and re-reads the
  primary under it, so the last mirroring of a document always copies its latest state, even
  when several threads or processes write the same document.
* **Policies**: ``"strict"`` raises :class:`MirrorError` (naming the mirror and the uids it
  missed) when a mirror write fails; the failure is also recorded in the outbox, so
  ``replay`` can repair the mirror. ``"best_effort"`` (the default) records the failure in the
  durable outbox, logs a warning, and retries later, with exponential backoff in time: while a
  mirror is backing off, writes do not try it at all, they only record what it missed. The first
  write after the backoff expires tries again and, if that works, replays (part of) the backlog;
  :meth:`MultiplexStore.commit` replays all of it; ``track-backends replay`` and
  :meth:`MultiplexStore.replay` replay it regardless of the backoff.
* **Metric points** (``append_points``, ``delete_points``; reads come from the primary): the
  primary appends first, with its fenced update, and decides; when the update matches nothing,
  no mirror is written. Then each mirror gets the primary's updated document and the same
  points. A miss is recorded as a ``points`` entry, whose replay replaces the mirror's points of
  that uid with the primary's, attempt by attempt (idempotent). See :mod:`.points`.
* **Blobs** (artifacts' content; reads come from the primary): an upload goes to the primary;
  once the primary has committed it, it is copied (streamed from the primary, verified) to each
  mirror. A miss is recorded as a ``blob`` entry by sha256, whose replay copies the blob from the
  primary, or deletes it from the mirror if the primary no longer has it. ``delete_blob`` runs
  on the primary, then on the mirrors. See :mod:`.blobs`.
* **The outbox** (:class:`~.outbox.Outbox`) records ``(mirror, collection, uid)``, not
  documents: replaying re-reads the current document from the primary. Its file is the
  ``outbox`` argument, else ``<primary file>.outbox`` for a ``pickled:``/``file:`` primary, else
  ``$TRACK_BACKENDS_DATA_DIR`` (default ``$XDG_DATA_HOME/track_backends``, i.e.
  ``~/.local/share/track_backends``) ``/outbox/<hash of the primary's URI>.outbox``. An
  ``ephemeral:`` primary gets an outbox in memory (its documents die with the process too).
* **Bounded waits**: :meth:`MultiplexStore.close` replays the outbox for at most
  ``close_timeout`` seconds (in a worker thread, so even a mirror that hangs cannot hold it up),
  then leaves what is left on disk for ``track-backends replay``. A single mirror call is bounded
  only by that mirror's own driver timeouts (e.g. ``serverSelectionTimeoutMS`` for MongoDB,
  ``connect_timeout`` for PostgreSQL): keep them short for mirrors.
* **Unavailable primary**: its error (e.g. :class:`~track_backends.errors.StoreUnavailableError`)
  propagates unchanged and nothing is sent to the mirrors, so the caller can retry the same call.

The stores' passwords never appear in ``repr``, messages or logs: mirrors are named by their
URIs with the password masked.

Modules: :mod:`.store` (:class:`MultiplexStore`), :mod:`.mirroring` (propagating writes and
draining the outbox, per the policy), :mod:`.sync` (bringing one store in line with the
primary), :mod:`.points` (mirroring metric points), :mod:`.blobs` (mirroring blobs),
:mod:`.series` (a series per attempt: read, compared, written whole), :mod:`.state` (per-mirror
state and backoff, :class:`MirrorStatus`, :class:`MirrorError`), :mod:`.outbox`,
:mod:`.uri` (``multiplex:`` URIs) and :mod:`.open` (opening the stores; the registry's factory).
"""

from .open import from_uri, open_multiplex
from .outbox import MEMORY_OUTBOX, Outbox, data_dir, default_outbox
from .state import (
    DEFAULT_BACKOFF,
    DEFAULT_BACKOFF_MAX,
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_LOCK_TIMEOUT,
    DEFAULT_POLICY,
    POLICIES,
    MirrorError,
    MirrorStatus,
    describe_status,
)
from .store import MultiplexStore, store_name
from .uri import MultiplexSpec, multiplex_uri, parse_multiplex

__all__ = [
    "DEFAULT_BACKOFF",
    "DEFAULT_BACKOFF_MAX",
    "DEFAULT_CLOSE_TIMEOUT",
    "DEFAULT_LOCK_TIMEOUT",
    "DEFAULT_POLICY",
    "MEMORY_OUTBOX",
    "POLICIES",
    "MirrorError",
    "MirrorStatus",
    "MultiplexSpec",
    "MultiplexStore",
    "Outbox",
    "data_dir",
    "default_outbox",
    "describe_status",
    "from_uri",
    "multiplex_uri",
    "open_multiplex",
    "parse_multiplex",
    "store_name",
]
