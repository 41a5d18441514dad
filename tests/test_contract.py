"""The contract suite on the embedded stores: ephemeral, pickled and file."""

import pytest

from track_backends.testing import (
    ArtifactContract,
    ClaimContract,
    LeaseContract,
    PointsContract,
    ProtocolContract,
    StoreContract,
)


class TestEphemeral(StoreContract, ProtocolContract, ClaimContract, LeaseContract, PointsContract, ArtifactContract):
    @pytest.fixture
    def store_uri(self):
        return "ephemeral:"


class TestPickled(StoreContract, ProtocolContract, ClaimContract, LeaseContract, PointsContract, ArtifactContract):
    multiprocess = True

    @pytest.fixture
    def store_uri(self, tmp_path):
        return f"pickled://{tmp_path}/store.pkl"


class TestFile(StoreContract, ProtocolContract, ClaimContract, LeaseContract, PointsContract, ArtifactContract):
    multiprocess = True

    @pytest.fixture
    def store_uri(self, tmp_path):
        return f"file://{tmp_path}/store.jsonl"
