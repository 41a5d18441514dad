"""URI parsing, the scheme registry, the error hierarchy, and the light import."""

import subprocess
import sys

import pytest

import track_backends as tb
from track_backends import errors, get_protocol, open_store, parse_uri, register
from track_backends.registry import unregister
from track_backends.stores.memory import MemoryStore


def test_import_loads_no_driver():
    code = (
        "import sys, track_backends, track_backends.protocol, track_backends.registry;"
        "bad = [m for m in ('pymongo', 'psycopg', 'psycopg_pool', 'mongomock', 'bson') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize(
    "uri,path,host,user,password,params",
    [
        ("ephemeral:", "", None, None, None, {}),
        ("pickled:///abs/path%20x/store.pkl", "/abs/path x/store.pkl", None, None, None, {}),
        ("pickled:relative.pkl?lock_timeout=2", "relative.pkl", None, None, None, {"lock_timeout": "2"}),
        ("file:///a/b.jsonl", "/a/b.jsonl", None, None, None, {}),
        ("mongodb://us%40r:p%40ss%2Fw@h:27017/db?replicaSet=rs", "/db", "h", "us@r", "p@ss/w", {"replicaSet": "rs"}),
        ("postgresql://u:secret@db.local:5433/track", "/track", "db.local", "u", "secret", {}),
        ("mongodb://u:pw@h1:1,h2:2/db?replicaSet=rs", "/db", "h1:1,h2:2", "u", "pw", {"replicaSet": "rs"}),
    ],
)
def test_parse_uri(uri, path, host, user, password, params):
    p = parse_uri(uri)
    assert (p.path, p.host, p.username, p.password, p.params) == (path, host, user, password, params)


def test_passwords_are_masked_everywhere():
    p = parse_uri("postgresql://alice:hunter2@host:5432/db")
    assert "hunter2" not in repr(p) and "hunter2" not in str(p) and "***" in repr(p)
    with pytest.raises(errors.UnknownSchemeError) as e:
        get_protocol("nosuch://alice:hunter2@host/db")
    assert "hunter2" not in str(e.value) and "alice" in str(e.value)
    with pytest.raises(errors.InvalidURIError) as e:
        parse_uri("postgresql://alice:hunter2@host:notaport/db")
    assert "hunter2" not in str(e.value)


def test_bad_uris():
    for bad in ("no-scheme", "", "://x", 42):
        with pytest.raises(errors.InvalidURIError):
            get_protocol(bad)


def test_unknown_scheme_lists_known_ones():
    with pytest.raises(errors.UnknownSchemeError) as e:
        get_protocol("redis://localhost")
    assert "ephemeral" in str(e.value) and "pickled" in str(e.value)
    assert isinstance(e.value, ValueError)


def test_register_refuses_to_replace_and_is_lazy():
    calls = []

    def factory(uri):
        calls.append(uri)
        return MemoryStore()

    register("mine", factory)
    try:
        with pytest.raises(errors.TrackBackendsError):
            register("mine", factory)
        with pytest.raises(errors.TrackBackendsError):
            register("ephemeral", factory)
        assert "mine" in tb.available_schemes()
        with get_protocol("mine://x/y?opt=1") as p:
            assert isinstance(p.store, MemoryStore)
        assert calls[0].params == {"opt": "1"}
        register("mine", "track_backends.stores.memory:from_uri", replace=True)
        assert isinstance(open_store("mine:"), MemoryStore)
    finally:
        unregister("mine")
    assert "mine" not in tb.available_schemes()


def test_missing_driver_names_the_extra():
    register("needsdriver", "track_backends_no_such_driver_module.sub:factory", extra="mongo")
    try:
        with pytest.raises(errors.DriverNotInstalledError) as e:
            get_protocol("needsdriver://h/db")
        assert "pip install 'track-backends[mongo]'" in str(e.value)
        assert isinstance(e.value, ImportError)
    finally:
        unregister("needsdriver")


def test_factory_exceptions_are_wrapped_and_masked():
    def broken(uri):
        raise RuntimeError(f"cannot reach {uri.raw}")

    register("broken", broken)
    try:
        with pytest.raises(errors.StoreError) as e:
            get_protocol("broken://bob:s3cret@h/db")
        assert "s3cret" not in str(e.value) and isinstance(e.value.__cause__, RuntimeError)
    finally:
        unregister("broken")


def test_entry_points_are_registered(monkeypatch):
    from importlib import metadata

    import track_backends.registry as reg

    ep = metadata.EntryPoint("plugged", "track_backends.stores.memory:from_uri", reg.ENTRY_POINT_GROUP)
    monkeypatch.setattr(metadata, "entry_points", lambda group=None: [ep] if group == reg.ENTRY_POINT_GROUP else [])
    monkeypatch.setattr(reg, "_entry_points_loaded", False)
    try:
        assert "plugged" in tb.available_schemes()
        assert isinstance(open_store("plugged:"), MemoryStore)
    finally:
        unregister("plugged")


def test_error_hierarchy():
    assert issubclass(errors.UnknownSchemeError, ValueError)
    assert issubclass(errors.InvalidURIError, ValueError)
    assert issubclass(errors.UnsupportedOperatorError, errors.QueryError)
    assert issubclass(errors.QueryError, ValueError)
    assert issubclass(errors.EncodingError, ValueError)
    assert issubclass(errors.StoreUnavailableError, errors.StoreError)
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.TrackBackendsError)


def test_ephemeral_stores_are_independent():
    with get_protocol("ephemeral:") as a, get_protocol("ephemeral:") as b:
        a.new_project(tb.Project("only-in-a"))
        assert b.fetch_projects() == []


def test_percent_encoded_inner_passwords_are_masked():
    from urllib.parse import quote

    from track_backends.uri import mask_password

    inner = quote("postgresql://u:SECRET@host/db", safe="")
    other = quote("mongodb://a%40b:p%40ss@h/db", safe="")
    masked = mask_password(f"multiplex:?primary={inner}&mirror={other}")
    assert "SECRET" not in masked and "p%2540ss" not in masked and masked.count("***") == 2
    assert repr(parse_uri(f"multiplex:?primary={inner}")).count("SECRET") == 0
    plain = "multiplex:?primary=pickled%3A%2F%2F%2Fdata%2Ft.pkl"
    assert mask_password(plain) == plain


def test_lazy_exports():
    assert tb.MigrationReport.__module__ == "track_backends.migrate"
    assert tb.ProtocolMultiplexer.__name__ == "ProtocolMultiplexer"
    with pytest.raises(AttributeError):
        tb.no_such_thing  # noqa: B018
