"""The dashboard's HTTP API, against the real ``track-backends ui`` process: JSON, errors, paging, read-only."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import seed
from conftest import Dashboard


def get(d: Dashboard, path: str, **params: Any) -> httpx.Response:
    return httpx.get(d.url + path.lstrip("/"), params=params, timeout=10)


def strict(r: httpx.Response) -> Any:
    """Parse as strict JSON: NaN and Infinity literals are refused."""

    def refuse(name: str) -> Any:
        raise AssertionError(f"non-standard JSON constant {name} in {r.url}")

    return json.loads(r.text, parse_constant=refuse)


@pytest.mark.parametrize(
    "q",
    ['{"$where": "1"}', '{"parameters.lr": {"$bogus": 1}}', '{"status.name": ', "[1, 2]", '{"a": {"$in": 3}}'],
)
def test_a_bad_query_answers_400_with_the_query_error(dashboard: Dashboard, q: str) -> None:
    for path in ("/api/trials", "/api/scatter"):
        r = get(dashboard, path, q=q, x="parameters.lr", y="metric_summary.loss.min")
        assert r.status_code == 400, r.text
        body = strict(r)
        assert body["error"] == "QueryError" and body["message"]


@pytest.mark.parametrize(
    "params",
    [{"page": "-1"}, {"size": "0"}, {"size": "100000"}, {"page": "x"}, {"dir": "0"}, {"dir": "2"}],
)
def test_bad_paging_answers_400(dashboard: Dashboard, params: dict[str, str]) -> None:
    r = get(dashboard, "/api/trials", **params)
    assert r.status_code == 400 and strict(r)["error"] == "BadRequest"


def test_a_bad_sort_path_is_a_query_error(dashboard: Dashboard) -> None:
    r = get(dashboard, "/api/trials", sort="$bad")
    assert r.status_code == 400 and strict(r)["error"] == "QueryError"


def test_pages_cover_every_trial_once(dashboard: Dashboard) -> None:
    for sort in ("", "metric_summary.loss.min", "parameters.lr", "status.name"):
        for direction in ("1", "-1"):
            uids: list[str] = []
            for page in range(4):
                body = strict(get(dashboard, "/api/trials", size=5, page=page, sort=sort, dir=direction))
                assert body["total"] == 12 and body["pages"] == 3
                uids += [t["uid"] for t in body["trials"]]
            assert len(uids) == len(set(uids)) == 12, (sort, direction)


def test_sorting_keeps_trials_without_the_field_last(dashboard: Dashboard) -> None:
    for direction in (1, -1):
        body = strict(get(dashboard, "/api/trials", sort="metric_summary.loss.min", dir=direction))
        mins = [t["metrics"].get("loss", {}).get("min") for t in body["trials"]]
        present = [m for m in mins if m is not None]
        assert mins == present + [None] * 4
        assert present == sorted(present, reverse=direction < 0)
    best = strict(get(dashboard, "/api/trials", sort="metric_summary.loss.min", size=1))["trials"][0]
    assert best["uid"] == dashboard.expected["best"]


def test_non_finite_numbers_are_valid_json(dashboard: Dashboard) -> None:
    uid = dashboard.expected["nan"]
    body = strict(get(dashboard, f"/api/trial/{quote(uid)}"))
    assert body["trial"]["parameters"]["lr"] == "Infinity"
    assert body["trial"]["metric_summary"]["loss"]["max"] == "Infinity"
    loss = body["metrics"]["loss"]
    assert loss["values"] == [None, None, 1.0] and loss["gaps"] == 2 and loss["count"] == 3
    table = strict(get(dashboard, "/api/trials", q=json.dumps({"uid": uid})))
    assert table["trials"][0]["parameters"]["lr"] == "Infinity"


def test_trial_detail_and_curves(dashboard: Dashboard) -> None:
    body = strict(get(dashboard, f"/api/trial/{dashboard.expected['curve']}"))
    loss = body["metrics"]["loss"]
    assert loss["count"] == loss["shown"] == len(loss["steps"]) == 25
    assert loss["steps"] == sorted(loss["steps"]) and loss["x"] == "step"
    thin = strict(get(dashboard, f"/api/trial/{dashboard.expected['curve']}", max_points=10))["metrics"]["loss"]
    assert thin["count"] == 25 and thin["shown"] <= 11 and thin["steps"][-1] == 24.0
    missing = get(dashboard, "/api/trial/no-such-uid")
    assert missing.status_code == 404 and strict(missing)["error"] == "NotFound"


def test_trial_artifacts_list_and_download(dashboard: Dashboard) -> None:
    uid = dashboard.expected["curve"]
    arts = strict(get(dashboard, f"/api/trial/{uid}"))["artifacts"]
    assert [a["name"] for a in arts] == [seed.XSS_ARTIFACT, "plots/loss.csv"]
    assert arts[1]["size"] == len(seed.ARTIFACT) and arts[1]["media_type"] == "text/csv"
    r = get(dashboard, f"/api/artifact/{uid}", name="plots/loss.csv")
    assert r.status_code == 200 and r.content == seed.ARTIFACT
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"] == "attachment; filename*=UTF-8''loss.csv"
    assert get(dashboard, f"/api/artifact/{uid}", name=seed.XSS_ARTIFACT).content == b"hostile name"
    missing = get(dashboard, f"/api/artifact/{uid}", name="nope.txt")
    assert missing.status_code == 404 and strict(missing)["error"] == "NotFound"
    bad = get(dashboard, f"/api/artifact/{uid}", name="../../etc/passwd")
    assert bad.status_code == 400 and strict(bad)["error"] == "BadRequest"
    assert strict(get(dashboard, f"/api/trial/{dashboard.expected['nan']}"))["artifacts"] == []


def test_overview_and_group(dashboard: Dashboard) -> None:
    body = strict(get(dashboard, "/api/overview"))
    assert body["all"]["total"] == 12
    assert body["all"]["by_status"] == {"Created": 5, "Running": 2, "Interrupted": 1, "Exception": 1, "Completed": 3}
    (mnist,) = body["projects"]
    assert mnist["name"] == "mnist" and mnist["total"] == 11
    assert body["outside"]["total"] == 1
    g = strict(get(dashboard, f"/api/group/{dashboard.expected['group']}"))
    assert g["total"] == 10 and g["group"]["name"] == "sweep-lr"
    assert "parameters.lr" in g["x_axes"] and "metric_summary.loss.min" in g["y_axes"]
    assert "parameters.opt.name" not in g["x_axes"]  # not a number
    s = strict(get(dashboard, "/api/scatter", q=json.dumps(g["query"]), x="parameters.lr", y="metric_summary.loss.min"))
    assert len(s["xs"]) == 7 and s["skipped"] == 3 and s["xs"] == sorted(s["xs"])
    bad = get(dashboard, "/api/scatter", x="uid", y="metric_summary.loss.min")
    assert bad.status_code == 400 and strict(bad)["error"] == "BadRequest"


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize(
    "path", ["/", "/api/trials", "/api/overview", "/api/trial/x", "/api/artifact/x?name=a", "/static/app.js"]
)
def test_read_only(dashboard: Dashboard, method: str, path: str) -> None:
    r = httpx.request(method, dashboard.url + path.lstrip("/"), timeout=10)
    assert r.status_code == 405


def test_the_page_loads_nothing_from_elsewhere(dashboard: Dashboard) -> None:
    r = get(dashboard, "/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    refs = re.findall(r'(?:src|href)="([^"]*)"', r.text)
    assert refs and all(ref.startswith(("/static/", "#/", "data:")) for ref in refs), refs
    scripts = "".join(get(dashboard, f"/static/{f}").text for f in ("dom.js", "app.js", "trial.js", "charts.js"))
    assert not re.search(r"\.(innerHTML|outerHTML)\b|insertAdjacentHTML|document\.write", scripts)
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert r.headers["x-content-type-options"] == "nosniff"
    js = get(dashboard, "/static/uPlot.iife.min.js")
    assert js.status_code == 200 and "uPlot" in js.text[:200]
    assert get(dashboard, "/static/uPlot.LICENSE").status_code == 200
    assert get(dashboard, "/static/%2e%2e/data.py").status_code == 404
