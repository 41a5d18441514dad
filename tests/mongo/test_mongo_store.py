"""What the MongoDB store adds to the driver: URIs, indexes, round trips, claims, errors, masking."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from mongo_helpers import fresh_name, require, with_database

from track_backends import errors, get_protocol, open_store
from track_backends.model import Project, Status, Trial, TrialGroup
from track_backends.registry import available_schemes
from track_backends.store import DEFAULT_INDEXES
from track_backends.testing.base import PENDING
from track_backends.testing.data import BAD_QUERIES

pymongo = require("pymongo")
from pymongo import monitoring  # noqa: E402

from track_backends.stores.mongo import DEFAULT_CLIENT_OPTIONS, MongoStore  # noqa: E402

SECRET = "hunter2"
DATA_COMMANDS = {"insert", "update", "delete", "find", "findAndModify", "aggregate", "count"}
DATA_COMMANDS |= {"createIndexes", "listIndexes", "getMore", "drop", "dropDatabase"}


class Commands(monitoring.CommandListener):
    """Records ``(command name, collection)`` of every data command a client sends."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name in DATA_COMMANDS:
            self.sent.append((event.command_name, event.command.get(event.command_name)))

    def succeeded(self, event: Any) -> None:
        pass

    def failed(self, event: Any) -> None:
        pass

    def take(self) -> list[tuple[str, Any]]:
        out, self.sent = self.sent, []
        return out


@pytest.fixture
def watched(secantus_uri: str) -> Iterator[tuple[MongoStore, Commands]]:
    """A store on the wire server whose client reports every command it sends."""
    listener = Commands()
    client: Any = pymongo.MongoClient(secantus_uri, event_listeners=[listener], serverSelectionTimeoutMS=5000)
    store = MongoStore(client, urlsplit(secantus_uri).path.strip("/"))
    yield store, listener
    store.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the socket goes: nothing listens there


# -- registry, URIs and options -----------------------------------------------------------------------


def test_schemes_are_registered() -> None:
    assert {"mongodb", "mongodb+srv", "mongomock"} <= set(available_schemes())


def test_importing_the_module_loads_no_driver() -> None:
    code = (
        "import sys, track_backends.stores.mongo;"
        "bad = [m for m in ('pymongo', 'mongomock', 'bson') if m in sys.modules]; print(bad); sys.exit(bool(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize(
    "module,uri,extra",
    [("pymongo", "mongodb://localhost/db", "mongo"), ("mongomock", "mongomock://db", "mongomock")],
)
def test_a_missing_driver_names_its_extra(monkeypatch: pytest.MonkeyPatch, module: str, uri: str, extra: str) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
    with pytest.raises(errors.DriverNotInstalledError) as e:
        open_store(uri)
    assert f"track-backends[{extra}]" in str(e.value) and isinstance(e.value, ImportError)


@pytest.mark.parametrize(
    "uri,database",
    [
        ("mongodb://127.0.0.1:1", "track"),
        ("mongodb://127.0.0.1:1/", "track"),
        ("mongodb://127.0.0.1:1/experiments?replicaSet=rs0", "experiments"),
        ("mongodb://u:p@127.0.0.1:1/My_Db?authSource=admin", "My_Db"),
        ("mongomock://Notebook", "Notebook"),
        ("mongomock:notebook2", "notebook2"),
        ("mongomock:///notebook3", "notebook3"),
        ("mongomock://", "track"),
    ],
)
def test_database_comes_from_the_uri(uri: str, database: str) -> None:
    require("mongomock")
    store = open_store(uri)  # connecting is lazy: no server needed
    try:
        assert isinstance(store, MongoStore) and store.database_name == database
        assert store.scheme == uri.split(":")[0]
    finally:
        store.close()


@pytest.mark.parametrize(
    "uri",
    [
        "mongodb://127.0.0.1:1/a.b",
        "mongodb://127.0.0.1:1/with%20space",
        "mongodb://127.0.0.1:1/" + "x" * 64,
        f"mongodb://alice:{SECRET}@127.0.0.1:1/db?bogusOption=1",
        f"mongodb://alice:{SECRET}@127.0.0.1:1/db?serverSelectionTimeoutMS=soon",
        "mongomock://a/b",
        "mongomock://db?opt=1",
        f"mongomock://alice:{SECRET}@db",
    ],
)
def test_bad_uris_are_refused_without_the_password(uri: str) -> None:
    require("mongomock")
    with pytest.raises(errors.InvalidURIError) as e:
        open_store(uri)
    assert SECRET not in str(e.value)


def test_unknown_option_is_named() -> None:
    with pytest.raises(errors.InvalidURIError, match="bogusOption"):
        open_store("mongodb://127.0.0.1:1/db?bogusOption=1")


def test_client_options_pass_through_with_bounded_defaults() -> None:
    uri = "mongodb://127.0.0.1:1/db?replicaSet=rs0&w=majority&retryWrites=false&serverselectiontimeoutms=700"
    with open_store(uri) as store:
        opts = store.client.options  # type: ignore[attr-defined]
        assert opts.replica_set_name == "rs0" and opts.write_concern.document == {"w": "majority"}
        assert opts.retry_writes is False
        assert opts.server_selection_timeout == 0.7  # the URI's, in any case, wins over the default
        assert opts.pool_options.connect_timeout == DEFAULT_CLIENT_OPTIONS["connectTimeoutMS"] / 1000
    with open_store("mongodb://127.0.0.1:1/db") as store:
        assert store.client.options.server_selection_timeout == 5.0  # type: ignore[attr-defined]
    tags = "readPreference=secondaryPreferred&readPreferenceTags=dc:ny,rack:1&readPreferenceTags="
    with open_store(f"mongodb://127.0.0.1:1/db?{tags}&appName=my%20app") as store:
        opts = store.client.options  # type: ignore[attr-defined]
        assert opts.read_preference.tag_sets == [{"dc": "ny", "rack": "1"}, {}]


def test_srv_host_that_does_not_resolve() -> None:
    start = time.monotonic()
    with pytest.raises((errors.StoreUnavailableError, errors.InvalidURIError)) as e:
        open_store(f"mongodb+srv://alice:{SECRET}@no-such-host.invalid/db?connectTimeoutMS=2000")
    assert SECRET not in str(e.value) and time.monotonic() - start < 15


# -- unavailable servers ---------------------------------------------------------------------------


def test_unreachable_server_fails_fast_and_masks_the_password() -> None:
    uri = f"mongodb://alice:{SECRET}@127.0.0.1:{closed_port()}/db?serverSelectionTimeoutMS=300"
    store = open_store(uri)
    for call in (lambda: store.insert("trials", {"uid": "a"}), lambda: store.find("trials"), lambda: store.count("x")):
        start = time.monotonic()
        with pytest.raises(errors.StoreUnavailableError) as e:
            call()
        assert time.monotonic() - start < 3
        assert isinstance(e.value.__cause__, pymongo.errors.PyMongoError)
        for text in (str(e.value), repr(store), str(e.value.__cause__)):
            assert SECRET not in text
        assert "alice:***@" in str(e.value)
    store.close()


@pytest.mark.parametrize("hosts", ["127.0.0.1:{port}", "127.0.0.1:{port},localhost:{port}"])
def test_an_unreachable_server_is_named_in_one_short_line(hosts: str) -> None:
    port = closed_port()
    uri = f"mongodb://alice:{SECRET}@{hosts.format(port=port)}/db?serverSelectionTimeoutMS=300&appName=a"
    with open_store(uri) as store:
        for call in (lambda: store.find("trials"), lambda: store.insert("trials", {"uid": "a"})):
            with pytest.raises(errors.StoreUnavailableError) as e:
                call()
            text = str(e.value)
            assert len(text) < 200 and "\n" not in text, text
            assert f"127.0.0.1:{port}" in text and "Topology" not in text and "appName" not in text
            assert SECRET not in text and "within 0.3 s" in text
        assert "127.0.0.1" in str(e.value.__cause__)  # the driver's full description stays the cause


def test_the_default_bound_is_a_few_seconds() -> None:
    store = open_store(f"mongodb://127.0.0.1:{closed_port()}/db")
    start = time.monotonic()
    with pytest.raises(errors.StoreUnavailableError):
        store.find("trials")
    assert 4 <= time.monotonic() - start < 8
    store.close()


def test_a_server_that_goes_away() -> None:
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parents[1]))
    from servers import ServerStartError, start_secantus

    try:
        server = start_secantus()
    except ServerStartError as e:
        if os.environ.get("CI", "").strip().lower() == "true":
            pytest.fail(f"cannot start a SecantusDB of its own: {e} (CI=true: refusing to skip)")
        pytest.skip(f"cannot start a SecantusDB of its own: {e}")
    try:
        store = open_store(server.info["uri"] + "gone?serverSelectionTimeoutMS=500")
        store.insert("trials", {"uid": "a"})
    finally:
        server.stop()
    start = time.monotonic()
    with pytest.raises(errors.StoreUnavailableError):
        store.find_one_and_update("trials", {"uid": "a"}, {"$set": {"x": 1}})
    assert time.monotonic() - start < 5
    store.close()
    store.close()  # closing twice is harmless
    with pytest.raises(errors.StoreUnavailableError, match="closed"):
        store.find("trials")


# -- error mapping -----------------------------------------------------------------------------------


def test_driver_errors_are_wrapped() -> None:
    import bson.errors

    pe = pymongo.errors
    store = open_store(f"mongodb://alice:{SECRET}@127.0.0.1:1/db")
    cases = [
        (pe.DuplicateKeyError("E11000 dup", 11000), errors.DuplicateKeyError),
        (pe.OperationFailure("Cannot apply $inc", 14), errors.QueryError),
        (pe.OperationFailure(f"weird mongodb://alice:{SECRET}@h/x and {SECRET}", 12345), errors.StoreError),
        (pe.ServerSelectionTimeoutError("no servers"), errors.StoreUnavailableError),
        (pe.AutoReconnect("connection reset"), errors.StoreUnavailableError),
        (pe.NetworkTimeout("timed out"), errors.StoreUnavailableError),
        (pe.InvalidOperation("Cannot use MongoClient after close"), errors.StoreUnavailableError),
        (pe.DocumentTooLarge("too large"), errors.EncodingError),
        (bson.errors.InvalidDocument("bad key"), errors.EncodingError),
        (pe.BulkWriteError({"writeErrors": [{"code": 11000, "errmsg": "E11000"}], "nInserted": 0}), None),
    ]
    for exc, expected in cases:
        got = store._wrap(exc, "testing", errors.EncodingError)  # type: ignore[attr-defined]
        assert type(got) is (expected or errors.DuplicateKeyError), (exc, got)
        assert SECRET not in str(got)
    store.close()


def test_values_mongodb_cannot_store(secantus_uri: str) -> None:
    with open_store(secantus_uri) as store:
        for doc in ({"uid": "a", "_id": 1}, {"uid": "b", "k\x00": 1}, {"uid": "c", "big": "x" * (17 * 2**20)}):
            with pytest.raises(errors.EncodingError):
                store.insert("things", doc)
            with pytest.raises(errors.EncodingError):
                store.insert_many("things", [{"uid": "fine"}, doc])
        with pytest.raises(errors.QueryError):
            store.update("things", {}, {"$set": {"_id": 5}})
        assert store.count("things") == 0


def test_types_survive_the_round_trip(secantus_uri: str) -> None:
    np = pytest.importorskip("numpy")
    with open_store(secantus_uri) as store:
        store.insert("things", {"uid": "a", "big": 2**62, "neg": -(2**63), "small": 3, "f": 2.0, "b": False})
        got = store.find("things", {"big": np.int64(2**62), "small": {"$in": (np.int32(3),)}})
        assert got == [{"uid": "a", "big": 2**62, "neg": -(2**63), "small": 3, "f": 2.0, "b": False}]
        assert [type(got[0][k]) for k in ("big", "neg", "small", "f", "b")] == [int, int, int, float, bool]
        after = store.find_one_and_update("things", {"uid": "a"}, {"$inc": {"big": np.int64(1)}})
        assert after is not None and type(after["big"]) is int and "_id" not in after


# -- indexes and round trips ------------------------------------------------------------------------


def test_indexes_are_created_once_per_collection(watched: tuple[MongoStore, Commands]) -> None:
    store, sent = watched
    store.insert("trials", {"uid": "t1", "group_id": "g", "status": {"name": "Created", "value": 0}})
    # once per store: the layout record is read (none in a new database, so trials of layout 1 are
    # looked for), the indexes made, and the first write to trials records the layout
    layout = [("find", "tb_meta"), ("find", "trials")]
    assert sent.take() == [*layout, ("createIndexes", "trials"), ("update", "tb_meta"), ("insert", "trials")]
    store.insert("trials", {"uid": "t2", "group_id": "g", "status": {"name": "Created", "value": 0}})
    store.insert_many("trials", [{"uid": "t3"}, {"uid": "t4"}])
    assert sent.take() == [("insert", "trials"), ("insert", "trials")]
    claimed = store.find_one_and_update("trials", {"group_id": "g", **PENDING}, {"$set": {"status.name": "Running"}})
    assert claimed is not None and claimed["uid"] == "t1"
    assert sent.take() == [("findAndModify", "trials")]  # one round trip per claim
    store.insert("projects", {"uid": "p"})
    store.ensure_index("trials", "hash")  # a default index: known already, nothing sent
    store.ensure_index("trials", ["metadata.owner"])
    store.ensure_index("trials", ["metadata.owner"])
    assert sent.take() == [("createIndexes", "projects"), ("insert", "projects"), ("createIndexes", "trials")]
    # (never a listIndexes: every command the store sent is listed above)
    info = store.database.trials.index_information()
    keys = {tuple(k for k, _ in v["key"]): bool(v.get("unique")) for v in info.values()}
    assert keys[("uid",)] is True and keys[("metadata.owner",)] is False
    for paths, unique in DEFAULT_INDEXES["trials"]:
        assert keys[paths] is unique
    projects = {tuple(k for k, _ in v["key"]) for v in store.database.projects.index_information().values()}
    assert projects == {("_id",), ("uid",)}


def test_a_second_store_reuses_the_indexes(watched: tuple[MongoStore, Commands], secantus_uri: str) -> None:
    store, sent = watched
    store.insert("trials", {"uid": "a"})
    with open_store(secantus_uri) as other:  # another process, say: createIndexes is idempotent
        other.insert("trials", {"uid": "b"})
        with pytest.raises(errors.DuplicateKeyError):
            other.insert("trials", {"uid": "a"})
    assert store.count("trials") == 2
    sent.take()
    again = MongoStore(store.client, store.database_name, owns_client=False)
    assert again.count("trials") == 2
    assert sent.take() == [("find", "tb_meta"), ("aggregate", "trials")]  # the layout is recorded: one read


def test_bad_queries_never_reach_the_server(watched: tuple[MongoStore, Commands]) -> None:
    store, sent = watched
    store.insert("things", {"uid": "a"})
    sent.take()
    for query, error in BAD_QUERIES:
        for call in (
            lambda q=query: store.find("things", q),
            lambda q=query: store.count("things", q),
            lambda q=query: store.delete("things", q),
            lambda q=query: store.update("things", q, {"$set": {"x": 1}}, many=True),
            lambda q=query: store.find_one_and_update("things", q, {"$set": {"x": 1}}),
        ):
            with pytest.raises(getattr(errors, error)):
                call()
    with pytest.raises(errors.QueryError):
        store.find("things", {}, sort={"x": 2})
    with pytest.raises(errors.QueryError):
        store.find("things", {}, projection={"a": 1, "b": 0})
    with pytest.raises(errors.UnsupportedOperatorError):
        store.update("things", {}, {"$rename": {"a": "b"}})
    assert sent.take() == []


def test_update_many_is_checked_before_it_is_sent(watched: tuple[MongoStore, Commands]) -> None:
    store, sent = watched
    store.insert_many("things", [{"uid": "a", "n": 1}, {"uid": "b", "n": "two"}, {"uid": "c", "n": 3}])
    sent.take()
    with pytest.raises(errors.QueryError):
        store.update("things", {}, {"$inc": {"n": 1}}, many=True)
    assert sent.take() == [("find", "things")]  # refused client-side: no update was sent
    assert [d["n"] for d in store.find("things", sort={"uid": 1})] == [1, "two", 3]
    sent.take()
    assert store.update("things", {}, {"$set": {"seen": True}}, many=True) == 3  # cannot fail: no check
    assert sent.take() == [("update", "things")]
    assert store.update("things", {"n": {"$gt": 0}}, {"$inc": {"n": 10}}, many=True) == 2
    assert sent.take() == [("find", "things"), ("update", "things")]
    with pytest.raises(errors.QueryError) as e:  # {"uid": x} matches one document: nothing to check first
        store.update("things", {"uid": "b"}, {"$inc": {"n": 1}}, many=True)
    assert sent.take() == [("update", "things")] and "without a transaction" not in str(e.value)
    assert store.update("things", {"uid": "a"}, {"$inc": {"n": 1}}, many=True) == 1
    assert sent.take() == [("update", "things")]
    assert [d["n"] for d in store.find("things", sort={"uid": 1})] == [12, "two", 13]


def test_insert_many_takes_back_what_it_inserted(watched: tuple[MongoStore, Commands]) -> None:
    store, sent = watched
    store.insert("things", {"uid": "b"})
    sent.take()
    with pytest.raises(errors.DuplicateKeyError):
        store.insert_many("things", [{"uid": "a"}, {"uid": "b"}, {"uid": "c"}])
    assert sent.take() == [("insert", "things"), ("delete", "things")]
    assert [d["uid"] for d in store.find("things")] == ["b"]
    sent.take()
    with pytest.raises(errors.DuplicateKeyError):
        store.insert_many("things", [{"uid": "b"}, {"uid": "d"}])  # the first one fails: nothing to take back
    assert sent.take() == [("insert", "things")]


def test_documents_written_without_the_unique_index(secantus_uri: str, mongo_wire_client: Any) -> None:
    """track created no index, so its databases can hold duplicate trials: say so, write nothing."""
    raw = mongo_wire_client[urlsplit(secantus_uri).path.strip("/")].trials
    raw.insert_many([{"uid": "dup", "n": 1}, {"uid": "dup", "n": 2}])
    with open_store(secantus_uri) as store:
        assert store.count("trials") == 2  # reading needs no index
        with pytest.raises(errors.DuplicateKeyError, match="remove them first"):
            store.insert("trials", {"uid": "new"})
        assert store.count("trials") == 2


# -- the Protocol's claims ---------------------------------------------------------------------------


def test_fetch_and_update_trial_goes_to_the_trials_collection(watched: tuple[MongoStore, Commands]) -> None:
    """track's MongoDB backend sent fetch_and_update_trial to the groups collection."""
    store, sent = watched
    p = get_protocol(store)
    p.new_project(Project("proj"))
    group = p.new_trial_group(TrialGroup("grp", project_id="proj"))
    trial = p.new_trial(Trial({"lr": 0.1}, name="exp", group_id=group.uid))
    assert trial is not None
    sent.take()
    got = p.fetch_and_update_trial({"group_id": group.uid, **PENDING}, "set_trial_status", status=Status.Running)
    assert got is not None and got.uid == trial.uid and got.status == Status.Running
    assert sent.take() == [("findAndModify", "trials")]
    assert store.database.trials.find_one({"uid": trial.uid})["status"] == Status.Running.to_doc()
    assert "status" not in store.database.groups.find_one({"uid": group.uid})
    sent.take()
    g = p.fetch_and_update_group({"uid": group.uid}, "set_group_metadata", done=True)
    assert g is not None and g.metadata == {"done": True}
    assert sent.take() == [("findAndModify", "groups")]


def test_claims_follow_the_sort(secantus_uri: str) -> None:
    with get_protocol(secantus_uri) as p:
        p.store.insert_many(
            "trials", [{"uid": f"t{i}", "group_id": "g", "prio": i % 3, **_created()} for i in range(9)]
        )
        order = []
        while (
            doc := p.store.find_one_and_update(
                "trials", PENDING, {"$set": {"status.name": "Running"}}, sort=[("prio", -1), ("uid", 1)]
            )
        ) is not None:
            order.append(doc["uid"])
        assert order == ["t2", "t5", "t8", "t1", "t4", "t7", "t0", "t3", "t6"]


def _created() -> dict[str, Any]:
    return {"status": {"name": "Created", "value": 0}}


# -- mongomock ----------------------------------------------------------------------------------------


def test_mongomock_stores_of_a_process_share_the_data() -> None:
    require("mongomock")
    name = fresh_name()
    with open_store(f"mongomock://{name}") as a:
        a.insert("things", {"uid": "x"})
    with open_store(f"mongomock:{name}") as b:
        assert [d["uid"] for d in b.find("things")] == ["x"]
        assert "_id" not in b.find("things")[0]
    with open_store(f"mongomock://{fresh_name()}") as c:
        assert c.find("things") == []


def test_mongomock_refuses_updates_mongodb_refuses() -> None:
    """mongomock silently ignores {$set: {"s.x": 1}} on a string; the store refuses it, as MongoDB does."""
    require("mongomock")
    with open_store(f"mongomock://{fresh_name()}") as store:
        store.insert("things", {"uid": "a", "s": "text", "l": [1]})
        for update in ({"$set": {"s.x": 1}}, {"$inc": {"s": 1}}, {"$push": {"s": 1}}, {"$set": {"l.x": 1}}):
            with pytest.raises(errors.QueryError):
                store.update("things", {"uid": "a"}, update)
            with pytest.raises(errors.QueryError):
                store.find_one_and_update("things", {"uid": "a"}, update)
        assert store.find("things") == [{"uid": "a", "s": "text", "l": [1]}]


def test_uid_pinning_is_read_from_the_parsed_query() -> None:
    require("mongomock")
    with open_store(f"mongomock://{fresh_name()}") as store:
        plan = store._query({"uid": "a"})  # type: ignore[attr-defined]
        assert plan.uid == "a" and plan.filter == {"uid": "a"}
        assert store._query({"uid": "a"}) is plan  # type: ignore[attr-defined]  # cached by its text
        assert store._query({"uid": {"$eq": "a"}}).uid == "a"  # type: ignore[attr-defined]
        for query in ({"uid": "a", "x": 1}, {"uid": 1}, {"uid": {"$in": ["a"]}}, {}):
            assert store._query(query).uid is None  # type: ignore[attr-defined]
        with pytest.raises(errors.QueryError):
            store.update("things", {"uid": {"$bogus": "a"}}, {"$set": {"x": 1}})


def test_with_database_keeps_credentials_and_auth_source() -> None:
    assert with_database("mongodb://h:1/", "x") == "mongodb://h:1/x"
    assert (
        with_database("mongodb://u:p@h1:1,h2:2/admin?tls=true", "x")
        == "mongodb://u:p@h1:1,h2:2/x?tls=true&authSource=admin"
    )


def test_existing_indexes_on_the_same_keys(secantus_uri: str) -> None:
    with open_store(secantus_uri) as store, open_store(secantus_uri) as other:
        store.insert("things", {"uid": "a", "s": 1})
        store.ensure_index("things", "s")
        with pytest.raises(errors.QueryError, match="unique=False"):
            other.ensure_index("things", "s", unique=True)
        other.ensure_index("things", "s")
        store.database.things.create_index("t", name="made_by_hand")  # type: ignore[attr-defined]
        other.ensure_index("things", "t")  # the same index under another name will do
        names = set(store.database.things.index_information())  # type: ignore[attr-defined]
        assert names == {"_id_", "uid_1", "s_1", "made_by_hand"}
