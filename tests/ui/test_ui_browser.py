"""The dashboard as a person sees it, in headless Chromium, against a real ``track-backends ui`` process."""

from __future__ import annotations

import json
from urllib.parse import quote

import seed
from conftest import Dashboard, Watched, playwright_expect
from seed import XSS, XSS_VALUE

BAD_STATUS = "the server responded with a status of 400"

expect = playwright_expect()


def rows(ui: Watched) -> list[str]:
    return ui.page.eval_on_selector_all("#trials tbody tr", "rs => rs.map(r => r.dataset.uid)")


def column(ui: Watched, metric: str) -> list[str]:
    return ui.page.eval_on_selector_all(f'#trials td[data-metric="{metric}"]', "cs => cs.map(c => c.textContent)")


def test_projects_show_counts_by_status(ui: Watched, dashboard: Dashboard) -> None:
    ui.open()
    main = ui.page.locator("main")
    assert "All 12 trials" in main.inner_text()
    row = ui.page.locator(f'tr[data-group="{dashboard.expected["group"]}"]')
    cells = row.locator("td").all_inner_texts()
    assert cells[:2] == ["sweep-lr", "10"]
    header = ui.page.locator("table.groups thead th").first.locator("xpath=..").locator("th").all_inner_texts()
    by_status = dict(zip(header[2:], cells[2:]))
    assert by_status["Completed"] == "3" and by_status["Created"] == "3" and by_status["Running"] == "2"
    assert "Trials outside any stored group" in main.inner_text()
    assert ui.page.get_by_text("<b>bold</b>", exact=True).count() == 1  # a group name shown as text
    assert ui.page.locator("main b").count() == 0
    ui.shot("overview")
    assert ui.problems() == []


def test_table_shows_every_trial_and_pages(ui: Watched, dashboard: Dashboard) -> None:
    ui.open("#/trials")
    assert len(rows(ui)) == dashboard.expected["total"] == 12
    assert ui.page.locator("#total").inner_text() == "12 trials"
    ui.shot("trials")
    ui.open("#/trials?size=5")
    seen = rows(ui)
    assert len(seen) == 5 and ui.page.locator("#page").inner_text() == "page 1 of 3"
    for page_no, count in ((2, 5), (3, 2)):
        ui.page.get_by_role("button", name="next →").click()
        expect(ui.page.locator("#page")).to_have_text(f"page {page_no} of 3")
        ui.loaded()
        page_rows = rows(ui)
        assert len(page_rows) == count
        seen += page_rows
    assert len(set(seen)) == 12
    assert ui.problems() == []


def test_sorting_by_loss_min_puts_the_best_first(ui: Watched, dashboard: Dashboard) -> None:
    ui.open("#/trials")
    ui.page.click('th[data-sort="metric_summary.loss.min"]')
    ui.page.wait_for_url("**sort=metric_summary.loss.min**")
    ui.loaded()
    assert rows(ui)[0] == dashboard.expected["best"]
    ui.shot("trials-sorted")
    values = column(ui, "loss.min")
    numbers = [float(v) for v in values if v != "—"]
    assert numbers == sorted(numbers) and len(numbers) == 8
    assert values[len(numbers) :] == ["—"] * 4  # trials without a loss come last
    assert "▲" in ui.page.locator('th[data-sort="metric_summary.loss.min"]').inner_text()
    ui.page.click('th[data-sort="metric_summary.loss.min"]')  # again: descending
    ui.page.wait_for_url("**dir=-1**")
    ui.loaded()
    assert rows(ui)[0] == dashboard.expected["xss"]  # loss 2.5, the worst
    numbers = [float(v) for v in column(ui, "loss.min") if v != "—"]
    assert numbers == sorted(numbers, reverse=True)
    ui.page.click('th[data-sort="parameters.lr"]')  # any parameter column sorts too
    ui.page.wait_for_url("**sort=parameters.lr**")
    ui.loaded()
    lrs = ui.page.eval_on_selector_all("#trials tbody tr td:nth-child(5)", "cs => cs.map(c => c.textContent)")
    assert lrs[0] == "0.0003" and lrs[-1] == "Infinity"
    assert ui.problems() == []


def test_query_box_filters(ui: Watched) -> None:
    ui.open("#/trials")
    ui.page.fill("#query", '{"status.name": "Completed"}')
    ui.page.press("#query", "Enter")
    ui.page.wait_for_url("**q=**")
    ui.loaded()
    assert len(rows(ui)) == 3
    assert ui.page.locator("#total").inner_text() == "3 trials match the query"
    statuses = ui.page.eval_on_selector_all("#trials tbody td:nth-child(2)", "cs => cs.map(c => c.textContent)")
    assert statuses == ["Completed"] * 3
    ui.page.fill("#query", '{"parameters.lr": {"$lt": 0.01}, "metric_summary.loss.count": 25}')
    ui.page.click("#apply")
    expect(ui.page.locator("#total")).to_have_text("3 trials match the query")
    assert ui.page.locator("#query-error").is_hidden()
    ui.shot("trials-filtered")
    assert ui.problems() == []


def test_a_bad_query_shows_the_query_error(ui: Watched) -> None:
    ui.open("#/trials")
    ui.page.fill("#query", '{"parameters.lr": {"$bogus": 1}}')
    ui.page.press("#query", "Enter")
    error = ui.page.locator("#query-error")
    error.wait_for(state="visible")
    assert error.inner_text().startswith("QueryError: ")
    assert "$bogus" in error.inner_text()
    assert len(rows(ui)) == 0
    ui.shot("trials-bad-query")
    ui.page.fill("#query", '{"status.name": ')
    ui.page.press("#query", "Enter")
    expect(ui.page.locator("#query-error")).to_contain_text("not valid JSON")
    # the only console messages are Chromium's own notes of the 400 answers
    assert ui.problems(allowed=lambda m: BAD_STATUS in m) == []
    assert any(BAD_STATUS in m for m in ui.problems())


def test_trial_page_draws_the_curve(ui: Watched, dashboard: Dashboard) -> None:
    uid = dashboard.expected["curve"]
    ui.open(f"#/trial/{quote(uid)}")
    plot = ui.page.locator('.plot[data-metric="loss"]')
    assert plot.get_attribute("data-points") == str(dashboard.expected["curve_points"]) == "25"
    assert ui.page.evaluate("window.__dashboardCharts['trial:loss'].data[1].length") == 25
    assert plot.locator("canvas").count() == 1
    assert ui.page.locator('.plot[data-metric="acc"]').get_attribute("data-points") == "1"
    params = ui.page.locator("table.kv.parameters").inner_text()
    assert "lr\t0.1" in params and "opt.name\tadam" in params
    assert "host\tnode-1" in ui.page.locator("table.kv.metadata").inner_text()
    ui.shot("trial")
    box = ui.page.locator('.plot[data-metric="loss"] .u-over').bounding_box()
    ui.page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)  # hover: the legend shows values
    legend = ui.page.locator('.plot[data-metric="loss"] .u-legend .u-value').all_inner_texts()
    assert legend[0] != "--" and legend[1] != "--"
    ui.page.mouse.down()  # drag-zoom onto the first half
    ui.page.mouse.move(box["x"] + 5, box["y"] + box["height"] / 2, steps=5)
    ui.page.mouse.up()
    assert ui.page.evaluate("window.__dashboardCharts['trial:loss'].scales.x.max") < 24
    ui.shot("trial-zoomed")
    assert ui.problems() == []


def test_trial_page_lists_artifacts_with_download_links(ui: Watched, dashboard: Dashboard) -> None:
    ui.open(f"#/trial/{quote(dashboard.expected['curve'])}")
    table = ui.page.locator("table.artifacts")
    assert table.locator("tbody tr").count() == 2
    text = table.inner_text()
    assert seed.XSS_ARTIFACT in text and "plots/loss.csv" in text and "text/csv" in text
    assert ui.page.locator("img").count() == 0  # the hostile name is text, not markup
    link = table.locator("a", has_text="plots/loss.csv")
    with ui.page.expect_download() as download:
        link.click()
    path = download.value.path()
    assert download.value.suggested_filename == "loss.csv" and open(path, "rb").read() == seed.ARTIFACT
    ui.open(f"#/trial/{quote(dashboard.expected['nan'])}")
    assert "no artifacts" in ui.page.locator('section[data-section="artifacts"]').inner_text()
    assert ui.problems() == []


def test_trial_page_shows_lease_errors_chronos(ui: Watched, dashboard: Dashboard) -> None:
    ui.open(f"#/trial/{quote(dashboard.expected['leased'])}")
    lease = ui.page.locator("table.kv.lease").inner_text()
    assert "owner\tworker-7" in lease and "(in " in lease and "attempts\t1" in lease
    assert "epoch" in ui.page.locator("table.chronos").inner_text()
    assert ui.page.locator("#no-curves").is_visible()
    ui.open("#/trials?q=" + quote(json.dumps({"status.name": "Exception"})))
    ui.page.click("#trials tbody tr a")
    ui.page.wait_for_url("**#/trial/**")
    ui.loaded()
    assert "diverged" in ui.page.locator('section[data-section="errors"]').inner_text()
    assert ui.problems() == []


def test_non_finite_values_show_and_plot_as_gaps(ui: Watched, dashboard: Dashboard) -> None:
    ui.open(f"#/trial/{quote(dashboard.expected['nan'])}")
    assert "lr\tInfinity" in ui.page.locator("table.kv.parameters").inner_text()
    plot = ui.page.locator('.plot[data-metric="loss"]')
    assert plot.get_attribute("data-points") == "3"
    assert ui.page.evaluate("window.__dashboardCharts['trial:loss'].data[1]") == [None, None, 1.0]
    assert "2 values not finite" in ui.page.locator(".chart h3").inner_text()
    assert ui.problems() == []


def test_xss_parameter_shows_as_text(ui: Watched, dashboard: Dashboard) -> None:
    ui.open("#/trials")
    assert ui.page.locator(f'th[data-sort="parameters.{XSS}"]').inner_text() == XSS
    assert ui.page.get_by_text(XSS_VALUE, exact=True).count() == 1
    ui.open(f"#/trial/{quote(dashboard.expected['xss'])}")
    kv = ui.page.locator("table.kv.parameters").inner_text()
    assert f"{XSS}\t{XSS_VALUE}" in kv
    assert f"note\t{XSS}" in ui.page.locator("table.kv.metadata").inner_text()
    ui.page.wait_for_timeout(300)
    assert ui.page.locator("main script, main img").count() == 0
    assert ui.page.evaluate("document.scripts.length") == 5  # uPlot, dom, charts, trial, app: nothing injected
    assert ui.dialogs == []
    ui.shot("trial-xss")
    assert ui.problems() == []


def test_group_scatter(ui: Watched, dashboard: Dashboard) -> None:
    gid = dashboard.expected["group"]
    ui.open(f"#/group/{quote(gid)}?x=parameters.lr&y=metric_summary.loss.min")
    scatter = ui.page.locator("#scatter")
    assert scatter.get_attribute("data-points") == "7"  # 6 swept + the XSS trial; 3 pending have no loss
    assert "7 trials plotted, 3 without numbers on both axes" in ui.page.locator("main").inner_text()
    assert ui.page.locator("#scatter-x").input_value() == "parameters.lr"
    assert "metric_summary.loss.min" in ui.page.locator("#scatter-y option").all_inner_texts()
    xs = ui.page.evaluate("window.__dashboardCharts.scatter.data[0]")
    assert xs == sorted(xs) and len(xs) == 7
    box = scatter.locator(".u-over").bounding_box()
    ui.page.mouse.move(box["x"] + box["width"] - 2, box["y"] + box["height"] / 2)
    assert ui.page.locator(".hover-info").inner_text().startswith("trial ")
    ui.page.check("#logx")
    ui.page.wait_for_url("**logx=1**")
    ui.loaded()
    assert ui.page.evaluate("window.__dashboardCharts.scatter.scales.x.distr") == 3
    ui.shot("group")
    assert ui.problems() == []


def test_everything_comes_from_the_dashboard(ui: Watched, dashboard: Dashboard) -> None:
    e = dashboard.expected
    for route in ("", "#/trials", f"#/trial/{quote(e['curve'])}", f"#/group/{e['group']}"):
        ui.open(route)
    assert ui.requests and all(r.startswith(dashboard.url) or r.startswith("data:") for r in ui.requests), ui.requests
    assert any(r.endswith("/static/uPlot.iife.min.js") for r in ui.requests)
    assert ui.problems() == []
