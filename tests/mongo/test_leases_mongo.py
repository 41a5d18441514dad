"""Leased claims on a MongoDB-wire server with real worker processes: SIGKILL chaos and clock skew."""

from __future__ import annotations

import pytest
from chaos import check_clock_skew, check_outcome, run_chaos


@pytest.mark.slow
def test_chaos_sigkill_workers(secantus_uri: str) -> None:
    out = run_chaos(secantus_uri)
    assert out["errors"] == []
    assert out["killed"] == 6
    check_outcome(secantus_uri, out["group"])


def test_the_server_clock_decides(secantus_uri: str) -> None:
    check_clock_skew(secantus_uri)
