"""The dashboard follows running workers: its own store and process, written to while the page is open."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from conftest import Dashboard, Watched, need_web_stack, playwright_expect, start_dashboard, watch

from track_backends import Trial, TrialGroup, get_protocol

expect = playwright_expect()


@pytest.fixture
def live(tmp_path: Any) -> Iterator[Dashboard]:
    need_web_stack()
    uri = f"pickled://{tmp_path / 'live.pkl'}"
    with get_protocol(uri) as proto:
        group = proto.new_trial_group(TrialGroup("live"))
        trial = Trial({"lr": 0.1}, group_id=group.uid)
        proto.new_trial(trial)
        proto.log_trial_metrics_batch(trial, {"loss": [(s, 1.0 / (s + 1)) for s in range(10)]})
    d = start_dashboard(uri, {"group": group.uid, "trial": trial.uid})
    yield d
    d.stop()


@pytest.fixture
def live_ui(browser: Any, live: Dashboard) -> Iterator[Watched]:
    yield from watch(browser, live.url)


def test_pages_update_while_workers_run(live_ui: Watched, live: Dashboard) -> None:
    ui, uid = live_ui, live.expected["trial"]
    ui.open(f"#/trial/{quote(uid)}")
    plot = ui.page.locator('.plot[data-metric="loss"]')
    assert plot.get_attribute("data-points") == "10"
    with get_protocol(live.uri) as proto:  # a worker in another process logs more points
        (trial,) = proto.get_trial(Trial({"lr": 0.1}, group_id=live.expected["group"]))
        proto.log_trial_metrics_batch(trial, {"loss": [(s, 1.0 / (s + 1)) for s in range(10, 15)]})
        proto.log_trial_metrics(trial, step=14, acc=0.5)
    expect(plot).to_have_attribute("data-points", "15", timeout=15_000)
    expect(ui.page.locator('.plot[data-metric="acc"]')).to_have_attribute("data-points", "1", timeout=15_000)
    assert ui.page.evaluate("window.__dashboardCharts['trial:loss'].data[0].length") == 15

    ui.open("#/trials")
    assert ui.page.locator("#total").inner_text() == "1 trial"
    ui.page.evaluate("document.querySelector('#trials tbody tr').dataset.mark = 'kept'")
    ui.page.wait_for_timeout(2500)  # two polls that find nothing new leave the DOM (and a text selection) alone
    assert ui.page.locator("#trials tbody tr[data-mark=kept]").count() == 1
    with get_protocol(live.uri) as proto:
        for lr in (0.2, 0.3):
            proto.new_trial(Trial({"lr": lr}, group_id=live.expected["group"]))
    expect(ui.page.locator("#total")).to_have_text("3 trials", timeout=15_000)
    assert len(ui.page.locator("#trials tbody tr").all()) == 3
    assert ui.problems() == []
