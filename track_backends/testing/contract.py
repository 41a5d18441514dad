"""Contract tests that every store passes: Store primitives, the Protocol, and atomic claims.

Subclass these in a test module and provide a ``store_uri`` fixture (see the package docstring).
"""

from .artifact_contract import ArtifactContract
from .claim_contract import ClaimContract
from .lease_contract import LeaseContract
from .points_contract import PointsContract
from .protocol_contract import ProtocolContract
from .store_contract import StoreContract

__all__ = ["ArtifactContract", "ClaimContract", "LeaseContract", "PointsContract", "ProtocolContract", "StoreContract"]
