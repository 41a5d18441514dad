"""The contract suite every store must pass, exported for backend plugins.

A plugin runs it by subclassing the contract classes in a test module and providing one
fixture, ``store_uri``, that returns the URI of a fresh, empty store (the plugin's scheme must be
registered). Set ``multiprocess = True`` on the class when other processes can open the URI::

    import pytest
    from track_backends.testing import ProtocolContract, StoreContract

    class TestMyStore(StoreContract, ProtocolContract):
        @pytest.fixture
        def store_uri(self, tmp_path):
            return f"mystore://{tmp_path}/db"

pytest collects the inherited ``test_*`` methods. Importing this package imports pytest.
"""

from .contract import ArtifactContract, ClaimContract, LeaseContract, PointsContract, ProtocolContract, StoreContract

__all__ = ["ArtifactContract", "ClaimContract", "LeaseContract", "PointsContract", "ProtocolContract", "StoreContract"]
