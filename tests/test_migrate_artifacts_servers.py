"""Artifacts survive a migration between every kind of backend, servers included."""

from __future__ import annotations

import hashlib
import os

import pytest
from migrate_helpers import (  # noqa: F401 - fixtures: pytest finds them in this module's namespace
    KINDS,
    Backends,
    backends_fixture,
    pg_admin,
    pg_server_uri,
)

from track_backends import Trial
from track_backends.migrate import migrate
from track_backends.protocol import DocumentProtocol

PAIRS = [(a, b) for a in KINDS for b in KINDS if a != b and ("ephemeral" in (a, b) or {a, b} == {"postgres", "mongo"})]


@pytest.mark.parametrize(("src_kind", "dst_kind"), PAIRS)
def test_artifacts_move_with_their_trials(backends: Backends, src_kind: str, dst_kind: str) -> None:
    src, dst = backends.open(src_kind), backends.open(dst_kind)
    proto = DocumentProtocol(src)
    shared, big = os.urandom(10_000), os.urandom(3 * (1 << 20) + 11)
    trials = []
    for i in range(3):
        t = Trial({"migrated": i})
        proto.new_trial(t)
        proto.put_artifact(t, "shared.bin", shared, metadata={"i": i})
        trials.append(t)
    proto.put_artifact(trials[0], "model/big.bin", big)
    report = migrate(src, dst)
    assert report.verification and report.blobs.copied == 2
    out = DocumentProtocol(dst)
    for i, t in enumerate(trials):
        info = out.get_artifact(t.uid, "shared.bin")
        assert info.metadata == {"i": i} and out.read_artifact(t.uid, "shared.bin") == shared
    assert out.read_artifact(trials[0].uid, "model/big.bin") == big
    assert {b.sha256 for b in dst.list_blobs()} == {hashlib.sha256(x).hexdigest() for x in (shared, big)}
    again = migrate(src, dst)
    assert again.verification and again.blobs.copied == 0
