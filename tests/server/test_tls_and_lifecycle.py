"""TLS, graceful shutdown, a server killed and restarted mid-run, and chaos through the server."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from chaos import check_clock_skew, check_outcome, run_chaos
from serve_helpers import Served, _verify, run_cli

from track_backends import get_protocol
from track_backends.errors import DuplicateKeyError, StoreUnavailableError


def test_https_with_a_ca_and_failures_that_are_clean(
    serve: Callable[..., Served], tokens: dict[str, str], tls_files: tuple[str, str, str], tmp_path: Any
) -> None:
    served = serve("ephemeral:", "--tokens", tokens["file"], tls=tls_files)
    with get_protocol(served.uri(tokens["write"])) as p:
        p.store.insert("things", {"uid": "a"})
        assert p.store.scheme == "https" and p.store.count("things") == 1
    plain = f"http://:{tokens['write']}@127.0.0.1:{served.port}?retries=1&backoff=0.05"
    with get_protocol(plain) as p:
        with pytest.raises(StoreUnavailableError) as e:
            p.store.insert("things", {"uid": "b"})
    assert "https" in str(e.value) and tokens["write"] not in str(e.value)
    with get_protocol(f"https://:{tokens['write']}@127.0.0.1:{served.port}?retries=0") as p:  # system CAs only
        with pytest.raises(StoreUnavailableError, match="(?i)certificate"):
            p.store.count("things")
    with pytest.raises(httpx.HTTPError):  # a raw client without the CA does not talk either
        httpx.get(f"{served.base}/health", timeout=5)
    r = httpx.get(f"{served.base}/health", verify=_verify(tls_files[2]), timeout=5)
    assert r.json()["status"] == "ok"  # still serving after the failed handshakes
    log = served.log()
    assert "Traceback" not in log and tokens["write"] not in log


def test_https_client_against_a_plain_server_fails_cleanly(
    pooled: Callable[..., Served], tls_files: tuple[str, str, str]
) -> None:
    served = pooled("ephemeral:")
    with get_protocol(f"https://127.0.0.1:{served.port}?ca={tls_files[2]}&retries=1&backoff=0.05") as p:
        with pytest.raises(StoreUnavailableError):
            p.store.count("things")
    with get_protocol(served.uri()) as p:
        assert p.store.count("things") == 0


def test_a_down_server_is_retried_then_unavailable(pooled: Callable[..., Served]) -> None:
    served = pooled("ephemeral:")
    served.kill()
    started = time.monotonic()
    with get_protocol(served.uri(retries="3", backoff="0.1")) as p:
        with pytest.raises(StoreUnavailableError, match="after 4 attempts"):
            p.store.count("things")
    assert 0.6 <= time.monotonic() - started < 10  # 0.1 + 0.2 + 0.4 s of backoff, bounded


def test_sigterm_lets_requests_in_flight_finish_then_closes_the_store(
    serve: Callable[..., Served], tmp_path: Any
) -> None:
    uri = f"pickled://{tmp_path}/s.pkl"
    served = serve(uri)
    body = json.dumps({"docs": [{"uid": f"d{i:05d}", "pad": "x" * 100} for i in range(5_000)]}).encode()
    sent_half = threading.Event()

    def slow_body() -> Iterator[bytes]:
        yield body[: len(body) // 2]
        sent_half.set()
        time.sleep(1.5)  # SIGTERM arrives while the server is still reading this request
        yield body[len(body) // 2 :]

    result: dict[str, Any] = {}

    def request() -> None:
        with served.client() as c:
            r = c.post("/v1/things/insert_many", content=slow_body(), headers={"content-type": "application/json"})
            result["status"], result["body"] = r.status_code, r.json()

    t = threading.Thread(target=request)
    t.start()
    assert sent_half.wait(10)
    time.sleep(0.3)
    code = served.terminate()
    t.join(60)
    assert result == {"status": 200, "body": {"inserted": 5_000}}
    assert code in (0, -15)
    log = served.log()
    assert '"event": "store_closed"' in log and "Traceback" not in log
    answered = log.index('"route": "/v1/{collection}/insert_many"')
    assert log.index("Shutting down") < answered < log.index('"event": "store_closed"')  # in flight at SIGTERM
    with get_protocol(uri) as p:
        assert p.store.count("things") == 5_000


def _writer(uri: str, acked: list[str], stop: threading.Event, name: str) -> None:
    """Insert documents one by one; a write is acknowledged when insert returns."""
    i = 0
    with get_protocol(uri) as p:
        while not stop.is_set():
            uid = f"{name}-{i:06d}"
            try:
                p.store.insert("things", {"uid": uid, "i": i})
            except DuplicateKeyError:  # the earlier attempt was applied, its answer lost
                pass
            except StoreUnavailableError:
                time.sleep(0.05)
                continue  # the same uid again: applied or not, it is not acknowledged yet
            acked.append(uid)
            i += 1


def test_server_killed_and_restarted_loses_no_acknowledged_write(serve: Callable[..., Served], tmp_path: Any) -> None:
    uri = f"pickled://{tmp_path}/s.pkl"
    served = serve(uri)
    acked: dict[str, list[str]] = {f"w{k}": [] for k in range(3)}
    stop = threading.Event()
    client_uri = served.uri(retries="8", backoff="0.1")
    threads = [threading.Thread(target=_writer, args=(client_uri, acked[n], stop, n)) for n in acked]
    for t in threads:
        t.start()
    for _ in range(3):
        time.sleep(1.0)
        served.kill()  # SIGKILL: no shutdown at all
        served = serve(uri, port=served.port)
    time.sleep(1.0)
    stop.set()
    for t in threads:
        t.join(60)
    with get_protocol(served.uri()) as p:
        stored = {d["uid"] for d in p.store.find("things", projection=["uid"])}
    for name, uids in acked.items():
        assert len(uids) > 20, f"writer {name} made no progress"
        assert not set(uids) - stored, f"acknowledged writes lost: {sorted(set(uids) - stored)[:5]}"
        assert uids == sorted(uids)


@pytest.mark.slow
def test_chaos_through_the_server(pooled: Callable[..., Served], tokens: dict[str, str]) -> None:
    served = pooled("pickled://{dir}/{n}.pkl", "--tokens", tokens["file"])
    uri = served.uri(tokens["write"])
    out = run_chaos(uri)
    assert out["errors"] == [], out["errors"]
    assert out["killed"] >= 3
    check_outcome(uri, out["group"])
    assert tokens["write"] not in served.log()


def test_the_servers_clock_decides_leases(pooled: Callable[..., Served]) -> None:
    check_clock_skew(pooled("ephemeral:").uri())


def test_several_worker_processes_share_a_journal(serve: Callable[..., Served], tmp_path: Any) -> None:
    uri = f"pickled://{tmp_path}/s.pkl"
    served = serve(uri, "--workers", "2")
    with get_protocol(served.uri()) as p:
        p.store.insert_many(
            "trials", [{"uid": f"t{i:03d}", "group_id": "g", "status": {"name": "Created"}} for i in range(40)]
        )
    claimed: list[str] = []

    def claim() -> None:
        with get_protocol(served.uri()) as p:
            while d := p.store.find_one_and_update(
                "trials", {"status.name": "Created"}, {"$set": {"status.name": "Running"}}
            ):
                claimed.append(d["uid"])

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(claimed) == [f"t{i:03d}" for i in range(40)]
    assert served.terminate() in (0, -15)
    assert served.log().count('"event": "store_closed"') == 2
    out = run_cli("serve", "ephemeral:", "--workers", "2")
    assert out.returncode == 2 and "--workers 1" in out.stderr
