"""Fuzzing the server from its own OpenAPI document with schemathesis: valid and invalid requests.

Every response must be a 2xx, or a 4xx with a JSON error body ``{"error", "message"}``: never a
5xx. A refused request must leave the targeted collection as it was. At least 1,000 requests are
sent (counted, and checked by the last test of the module). The blob routes are fuzzed too, with
small bodies (the server's blob limit is 200 kB here).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from serve_helpers import Served, start_serve
from servers import ServerStartError

from track_backends.server.openapi import openapi_document
from track_backends.server.routes import COLLECTION_PATTERN

EXAMPLES = int(os.environ.get("TRACK_BACKENDS_FUZZ_EXAMPLES", "150"))
SENT: list[int] = []
SEED = [
    {"uid": "a", "n": 1, "s": "x", "tags": ["p", "q"], "sub": {"k": 1}},
    {"uid": "b", "n": 2.5, "s": "y", "tags": [], "status": {"name": "Created", "value": 0}},
]

schema = schemathesis.openapi.from_dict(openapi_document())
schema.config.generation.update(modes=list(GenerationMode), max_examples=EXAMPLES, database="none")


@pytest.fixture(scope="module")
def fuzzed(tokens: dict[str, str]) -> Iterator[Served]:
    try:
        served = start_serve(
            "ephemeral:",
            "--tokens",
            tokens["file"],
            "--max-body",
            "200000",
            env={"TRACK_BACKENDS_SERVE_MAX_BLOB": "200000"},
        )
    except ServerStartError as e:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"the server did not start: {e}")
        pytest.skip(f"the server did not start: {e}")
    with served.client(tokens["admin"]) as c:
        assert c.post("/v1/things/insert_many", json={"docs": SEED}).status_code == 200
    yield served
    served.process.stop()


def _snapshot(c: Any, collection: str) -> Any:
    r = c.post(f"/v1/{collection}/find", json={"sort": [["uid", 1]]})
    return r.json() if r.status_code == 200 else r.status_code


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_generated_requests(case: Any, fuzzed: Served, tokens: dict[str, str]) -> None:
    import re

    collection = (case.path_parameters or {}).get("collection")
    if isinstance(collection, str) and re.match(COLLECTION_PATTERN, collection):
        # valid names go to the seeded collection (or one other), so updates and deletes meet documents
        collection = "things" if hashlib.sha1(collection.encode()).digest()[0] % 4 else "other"
        case.path_parameters = {**case.path_parameters, "collection": collection}
    with fuzzed.client(tokens["admin"]) as c:
        before = _snapshot(c, collection) if isinstance(collection, str) and "/" not in collection else None
        response = case.call(base_url=fuzzed.base, headers={"authorization": f"Bearer {tokens['admin']}"})
        SENT.append(response.status_code)
        assert response.status_code < 500, (case.as_curl_command(), response.text[:500])
        if response.status_code >= 400:
            body = response.json()
            assert isinstance(body, dict) and set(body) == {"error", "message"}, response.text[:300]
            assert isinstance(body["error"], str) and body["error"].endswith("Error")
            if before is not None:
                assert _snapshot(c, collection) == before, case.as_curl_command()
        else:
            assert response.status_code in (200, 206)
            media = response.headers.get("content-type", "")
            media = media[0] if isinstance(media, list) else media
            if media.startswith("application/json"):
                response.json()
            elif media.startswith("application/x-ndjson"):  # the blob listing: JSON lines, then an end line
                lines = [json.loads(line) for line in response.text.splitlines()]
                assert lines and lines[-1].get("end") is True, response.text[:300]
            else:
                assert media == "application/octet-stream", media


def test_enough_requests_were_sent() -> None:
    print(f"\n{len(SENT)} generated requests: {sum(s == 200 for s in SENT)} answered 200, the rest 4xx")
    assert len(SENT) >= 1000, f"only {len(SENT)} generated requests"
    assert any(s == 200 for s in SENT) and any(400 <= s < 500 for s in SENT)
