"""Leased claims on PostgreSQL with real worker processes: SIGKILL chaos and clock skew."""

from __future__ import annotations

import pytest
from chaos import check_clock_skew, check_outcome, run_chaos


@pytest.mark.slow
def test_chaos_sigkill_workers(pg_uri: str) -> None:
    out = run_chaos(pg_uri)
    assert out["errors"] == []
    assert out["killed"] == 6
    check_outcome(pg_uri, out["group"])


def test_the_server_clock_decides(pg_uri: str) -> None:
    check_clock_skew(pg_uri)
