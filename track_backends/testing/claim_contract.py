"""Atomic claims across processes."""

from __future__ import annotations

import pytest

from ..registry import get_protocol
from .base import PENDING, _Base, _pending_doc
from .workers import run_claimers


class ClaimContract(_Base):
    """Atomic claims across processes (skipped where the URI cannot be shared)."""

    claim_trials: int = 2000
    claim_workers: int = 4

    def test_processes_claim_each_trial_once(self, store_uri: str) -> None:
        if not self.multiprocess:
            pytest.skip("this store cannot be opened from another process")
        with get_protocol(store_uri) as p:
            p.store.insert_many("trials", [_pending_doc(i) for i in range(self.claim_trials)])
        per_worker = run_claimers(store_uri, {"group_id": "g", **PENDING}, self.claim_workers)
        claimed = [uid for uids in per_worker for uid in uids]
        assert len(claimed) == self.claim_trials, "some trials were lost or claimed twice"
        assert set(claimed) == {f"t{i:05d}" for i in range(self.claim_trials)}
        assert sum(1 for uids in per_worker if uids) >= 2, "the claims were not spread over processes"
        with get_protocol(store_uri) as p:
            assert p.store.count("trials", {"status.name": "Running"}) == self.claim_trials
            owners = {d["uid"]: d["metadata"]["owner"] for d in p.store.find("trials")}
        for i, uids in enumerate(per_worker):
            assert all(owners[u] == i for u in uids)
