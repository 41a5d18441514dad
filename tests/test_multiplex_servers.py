"""The multiplexer against real servers: mirrors that hang or go down, a primary that goes down, secrets.

Server-backed tests start their own SecantusDB (a MongoDB-wire server) on a fixed port with an
on-disk storage path, or a PostgreSQL (pgserver) on a data directory, so that it can be stopped
and restarted with its data; under CI=true they fail instead of skipping when the server cannot
start.
"""

from __future__ import annotations

import logging
import socket
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import unavailable
from multiplex_helpers import PENDING, assert_mirrored, new_trials
from servers import ServerProcess, ServerStartError, free_port, mongo_ping_probe, start_server

from track_backends import errors
from track_backends.cli import main
from track_backends.model import Status, Trial, TrialGroup
from track_backends.multiplexer import ProtocolMultiplexer
from track_backends.registry import get_protocol, open_store
from track_backends.store import TRIALS
from track_backends.stores.journal import JournalStore
from track_backends.stores.multiplex import MirrorError, multiplex_uri, parse_multiplex
from track_backends.testing.data import COLL


# -- mirrors that hang -------------------------------------------------------------------------------
def dead_uri(scheme: str, port: int, secret: str = "pw", timeout: int = 3) -> str:
    """A URI of a server that does not answer, with client timeouts of ``timeout`` seconds."""
    if scheme == "mongodb":
        pytest.importorskip("pymongo")
        ms = timeout * 1000
        return f"mongodb://user:{secret}@127.0.0.1:{port}/db?serverSelectionTimeoutMS={ms}&connectTimeoutMS={ms}"
    pytest.importorskip("psycopg")
    return f"postgresql://user:{secret}@127.0.0.1:{port}/db?connect_timeout={timeout}&pool_timeout={timeout}"


@pytest.fixture
def black_hole() -> Iterator[int]:
    """A port that accepts TCP connections and never answers: a server that hangs."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield sock.getsockname()[1]


@pytest.mark.parametrize("scheme", ["postgresql", "mongodb"])
def test_close_is_bounded_when_a_server_mirror_hangs(tmp_path: Any, black_hole: int, scheme: str) -> None:
    proto = ProtocolMultiplexer(f"pickled://{tmp_path}/p.pkl", dead_uri(scheme, black_hole), close_timeout=0.5)
    proto.store.mirrors[0].failed("down", 60, 60)  # known down: the writes only record
    new_trials(proto, 5)
    assert proto.status()[proto.store.mirrors[0].name].outbox_depth == 5
    started = time.monotonic()
    proto.close()  # one replay attempt would take 3 s
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize("scheme", ["postgresql", "mongodb"])
def test_passwords_never_show(tmp_path: Any, caplog: Any, capsys: Any, scheme: str) -> None:
    inner = dead_uri(scheme, free_port(), secret="s3cr%3At", timeout=1)  # percent-encoded inside, doubly outside
    uri = multiplex_uri(f"pickled://{tmp_path}/p.pkl", inner, policy="strict")
    with caplog.at_level(logging.DEBUG, logger="track_backends"):
        store = open_store(uri)
        with pytest.raises(MirrorError) as info:
            store.insert(COLL, {"uid": "a"})
        texts = [str(info.value), repr(store), store.name, repr(store.status()), repr(parse_multiplex(uri))]
        store.close(timeout=0)
        assert main(["replay", uri]) == 1
    assert main(["replay", "--outbox", str(tmp_path / "p.pkl.outbox")]) == 2  # the outbox has no password
    assert "without their passwords" in capsys.readouterr().err
    texts += [r.getMessage() for r in caplog.records]
    with open(tmp_path / "p.pkl.outbox", "rb") as f:
        texts.append(f.read().decode("latin-1"))
    for text in texts:
        assert "s3cr" not in text, text
    assert "user:***@" in str(info.value)


# -- real servers ------------------------------------------------------------------------------------
class Secantus:
    """A SecantusDB on a fixed port with its data on disk, so it can be stopped and restarted."""

    def __init__(self, tmp: Any) -> None:
        try:
            import pymongo  # noqa: F401
            import secantus  # noqa: F401
        except ImportError as e:
            unavailable(f"SecantusDB or pymongo is not installed: {e}")
        self.port = free_port()
        self.storage = str(tmp / "secantus-data")
        self.base = f"mongodb://127.0.0.1:{self.port}/"
        self.server: ServerProcess | None = None

    def uri(self, name: str) -> str:
        return f"{self.base}{name}?serverSelectionTimeoutMS=300&connectTimeoutMS=300"

    def start(self) -> None:
        argv = [sys.executable, "-m", "secantus", "--host", "127.0.0.1", "--port", str(self.port)]
        argv += ["--storage-path", self.storage, "--standalone", "--log-level", "WARNING"]
        try:
            self.server = start_server("secantus", argv, mongo_ping_probe(self.base), timeout=30)
        except ServerStartError as e:
            unavailable(f"SecantusDB does not start: {e}")

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


class Postgres:
    """A PostgreSQL from the pgserver wheel, on a data directory that survives a restart."""

    def __init__(self, tmp: Any) -> None:
        try:
            import pgserver  # noqa: F401
            import psycopg  # noqa: F401
        except ImportError as e:
            unavailable(f"pgserver or psycopg is not installed: {e}")
        self.datadir = str(tmp / "pgdata")
        self.server: Any = None
        self.base = ""

    def uri(self, name: str) -> str:
        return f"{self.base}&schema={name}&pool_timeout=1&connect_timeout=1"

    def start(self) -> None:
        import pgserver

        try:
            self.server = pgserver.get_server(self.datadir, cleanup_mode="stop")
        except Exception as e:  # noqa: BLE001 - any failure to start means "no server"
            unavailable(f"cannot start PostgreSQL with pgserver: {e}")
        self.base = self.server.get_uri()
        assert "?" in self.base

    def stop(self) -> None:
        if self.server is not None:
            self.server.cleanup()
            self.server = None


@pytest.fixture(params=["secantus", "postgres"])
def server(request: Any, tmp_path: Any) -> Iterator[Any]:
    """A real database server that the test can stop and restart (keeping its data)."""
    srv = (Secantus if request.param == "secantus" else Postgres)(tmp_path)
    srv.start()
    yield srv
    srv.stop()


def retry(call: Any, seconds: float = 15.0) -> Any:
    """Call until it stops raising StoreUnavailableError (a restarted server takes a moment)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return call()
        except errors.StoreUnavailableError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_mirror_down_for_1000_writes_catches_up_after_replay(tmp_path: Any, server: Any, capsys: Any) -> None:
    mirror_uri = server.uri("mirror")
    uri = multiplex_uri(f"pickled://{tmp_path}/p.pkl", mirror_uri, backoff=0.2, backoff_max=2, close_timeout=0.5)
    with get_protocol(uri) as proto:
        group = proto.new_trial_group(TrialGroup("g", project_id="p"))
        early = new_trials(proto, 50, group.uid)
        proto.log_trial_metrics(early[0], step=0, loss=1.0)
        proto.add_trial_tags(early[1], keep="no")
        server.stop()  # the mirror goes down
        started = time.monotonic()
        trials = new_trials(proto, 400, group.uid, start=50)  # 400 writes
        for t in trials[:300]:  # 300
            proto.log_trial_metrics(t, step=1, loss=0.5)
        for _ in range(200):  # 200 claims
            assert proto.fetch_and_update_trial({"group_id": group.uid, **PENDING}, "set_trial_status", Status.Running)
        proto.set_group_metadata(group, phase="down")  # 1
        proto.store.update(TRIALS, {"uid": early[1].uid}, {"$unset": {"tags": ""}})  # 1
        assert proto.store.delete(TRIALS, {"parameters.i": {"$lt": 98}}) == 98  # 98 deletes: 1000 writes
        elapsed = time.monotonic() - started
        status = proto.store.status()
        (name,) = status
        # every trial, the group, and the points of 300 trials (one entry per uid, replayed whole)
        assert status[name].down and status[name].outbox_depth == 450 + 1 + 300
        assert elapsed < 25, f"1000 writes with a dead mirror took {elapsed:.1f} s: the backoff does not work"
    server.start()  # same port or socket, same data
    for _ in range(75):  # a restarted server may take a moment to answer
        if main(["replay", uri]) == 0:
            break
        time.sleep(0.2)
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1].endswith(", 0 left") and sum(int(x.split("replayed ")[1].split(",")[0]) for x in lines) == 751
    with open_store(f"pickled://{tmp_path}/p.pkl") as primary, open_store(mirror_uri) as mirror:
        assert primary.count(TRIALS) == 352
        assert_mirrored(primary, mirror)


def test_primary_down_raises_and_loses_nothing(tmp_path: Any, server: Any) -> None:
    mirror = JournalStore(tmp_path / "m.pkl")
    proto = ProtocolMultiplexer(server.uri("primary"), mirror, outbox=str(tmp_path / "box"), close_timeout=1)
    first = proto.new_trial(Trial({"i": 0}, group_id="g"))
    server.stop()
    trial = Trial({"i": 1}, group_id="g")
    before = trial.to_doc()
    with pytest.raises(errors.StoreUnavailableError):
        proto.new_trial(trial)
    with pytest.raises(errors.StoreUnavailableError):
        proto.log_trial_metrics(first, step=1, loss=0.1)
    with pytest.raises(errors.StoreUnavailableError):
        proto.fetch_and_update_trial({"group_id": "g", **PENDING}, "set_trial_status", Status.Running)
    assert trial.to_doc() == before and first.metrics == {}  # the caller's objects are intact for a retry
    assert [d["uid"] for d in mirror.find(TRIALS)] == [first.uid]  # nothing half-applied to the mirror
    assert proto.status()[proto.store.mirrors[0].name].outbox_depth == 0
    server.start()
    assert retry(lambda: proto.new_trial(trial)) is trial  # the retry with the same object works
    proto.log_trial_metrics(first, step=1, loss=0.1)
    assert_mirrored(proto.store.primary, mirror)
    proto.close()
