"""The contract suite on PostgreSQL."""

from __future__ import annotations

import pytest

from track_backends.testing import (
    ArtifactContract,
    ClaimContract,
    LeaseContract,
    PointsContract,
    ProtocolContract,
    StoreContract,
)


class TestPostgres(StoreContract, ProtocolContract, LeaseContract, PointsContract, ArtifactContract):
    multiprocess = True

    @pytest.fixture
    def store_uri(self, pg_uri: str) -> str:
        return pg_uri


class TestPostgresClaims(ClaimContract):
    """Four processes claim 5,000 trials, each exactly once."""

    multiprocess = True
    claim_trials = 5000
    claim_workers = 4

    @pytest.fixture
    def store_uri(self, pg_uri: str) -> str:
        return pg_uri
