"""The dashboard's API answers the same on every store: memory, journals, mongomock, a MongoDB-wire
server and PostgreSQL (in process, through Starlette's test client)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import seed
from conftest import need_web_stack, unavailable

# The PostgreSQL server fixture lives in tests/postgres/conftest.py, out of this directory's reach:
# importing it here registers it for this module (as tests/migrate_helpers.py does).
from postgres.conftest import pg_server_uri  # noqa: F401

from track_backends import get_protocol

STORES = ["ephemeral", "pickled", "file", "mongomock", "mongodb", "postgresql"]


def store_uri(kind: str, request: pytest.FixtureRequest, tmp_path: Any) -> str:
    name = f"ui_{uuid.uuid4().hex[:12]}"
    if kind == "ephemeral":
        return "ephemeral:"
    if kind in ("pickled", "file"):
        return f"{kind}://{tmp_path / name}"
    if kind == "mongomock":
        try:
            import mongomock  # noqa: F401
        except ImportError as e:
            unavailable(f"mongomock is not installed: {e}")
        return f"mongomock://{name}"
    if kind == "mongodb":
        base = request.getfixturevalue("mongo_wire_uri").rstrip("/")
        return f"{base}/{name}"
    base = request.getfixturevalue("pg_server_uri")
    return f"{base}{'&' if '?' in base else '?'}schema={name}"


class Client:
    """GET requests straight into the ASGI application (no server, no network, no lifespan)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        import anyio
        import httpx

        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://ui") as c:
                return await c.get(path, params=params)

        with ThreadPoolExecutor(1) as pool:  # its own thread: Playwright's sync API keeps a loop running in this one
            return pool.submit(anyio.run, go).result()


@pytest.fixture(params=STORES)
def client(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[tuple[Client, dict[str, Any]]]:
    need_web_stack()
    from track_backends.ui import create_app

    proto = get_protocol(store_uri(request.param, request, tmp_path))
    try:
        expected = seed.fill_protocol(proto)
        yield Client(create_app(proto)), expected
    finally:
        proto.close()


def test_every_view_on_every_store(client: tuple[Client, dict[str, Any]]) -> None:
    c, expected = client
    overview = c.get("/api/overview").json()
    assert overview["all"]["total"] == 12 and overview["outside"]["total"] == 1
    assert overview["all"]["by_status"]["Completed"] == 3
    body = c.get("/api/trials", params={"sort": "metric_summary.loss.min"}).json()
    assert body["total"] == 12 and body["trials"][0]["uid"] == expected["best"]
    mins = [t["metrics"].get("loss", {}).get("min") for t in body["trials"]]
    assert mins[-4:] == [None] * 4 and mins[:8] == sorted(mins[:8])
    uids = []
    for page in range(3):
        got = c.get("/api/trials", params={"size": 5, "page": page, "sort": "parameters.lr", "dir": -1}).json()
        uids += [t["uid"] for t in got["trials"]]
    assert len(set(uids)) == 12
    q = json.dumps({"status.name": "Completed"})
    assert c.get("/api/trials", params={"q": q}).json()["total"] == 3
    bad = c.get("/api/trials", params={"q": '{"x": {"$nope": 1}}'})
    assert bad.status_code == 400 and bad.json()["error"] == "QueryError"
    trial = c.get(f"/api/trial/{expected['curve']}").json()
    assert trial["metrics"]["loss"]["shown"] == 25
    assert [a["name"] for a in trial["artifacts"]] == [seed.XSS_ARTIFACT, "plots/loss.csv"]
    got = c.get(f"/api/artifact/{expected['curve']}", params={"name": "plots/loss.csv"})
    assert got.status_code == 200 and got.content == seed.ARTIFACT
    nan = json.loads(c.get(f"/api/trial/{expected['nan']}").text, parse_constant=lambda n: pytest.fail(n))
    assert nan["metrics"]["loss"]["values"] == [None, None, 1.0]
    group = c.get(f"/api/group/{expected['group']}").json()
    assert group["total"] == 10
    s = c.get(
        "/api/scatter", params={"q": json.dumps(group["query"]), "x": "parameters.lr", "y": "metric_summary.loss.min"}
    )
    assert len(s.json()["xs"]) == 7
