"""The contract suite on the embedded stores: ephemeral, pickled and file."""

import pytest

from track_backends.testing import ClaimContract, ProtocolContract, StoreContract


class TestEphemeral(StoreContract, ProtocolContract, ClaimContract):
    @pytest.fixture
    def store_uri(self):
        return "ephemeral:"
