"""The track persistence Protocol, written once over the Store interface.

Every mutating method builds a MongoDB-style update document (:mod:`.updates`) and hands it to
the store, so the same semantics hold on every backend, and
``fetch_and_update_trial(query, attr, ...)`` is exactly one atomic ``store.find_one_and_update``.

* :mod:`.core`: projects, groups, trials, queries, and fencing of reserved trials' writes.
* :mod:`.leases`: ``reserve_trial``, ``heartbeat``, ``run_trial``, ``requeue_stale``.
* :mod:`.metrics`: points beside the trial, summaries in it, ``fetch_metrics``, ``fetch_trials``.
* :mod:`.artifacts`: ``put_artifact``, ``open_artifact``, ``list_artifacts``, ``delete_artifact``.
"""

from __future__ import annotations

from .artifacts import ArtifactInfo, ArtifactsProtocol
from .leases import DEFAULT_LEASE, default_owner
from .updates import GROUP_UPDATES, TRIAL_UPDATES


class DocumentProtocol(ArtifactsProtocol):
    """track's persistence Protocol over any :class:`~track_backends.store.Store`.

    Args:
        store: The store that holds the documents; the protocol owns it and closes it.
    """


__all__ = ["ArtifactInfo", "DEFAULT_LEASE", "GROUP_UPDATES", "TRIAL_UPDATES", "DocumentProtocol", "default_owner"]
