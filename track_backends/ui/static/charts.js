/* Charts drawn with the vendored uPlot: metric curves (lines) and parameter/metric scatters (points).
   Every chart's container carries data-points (points drawn) for tests and people alike, and the
   uPlot instances are listed in window.__dashboardCharts. */
"use strict";
window.TB = window.TB || {};

(function (TB) {
  const registry = (window.__dashboardCharts = {});
  const COLOR = "#2b6cb0";

  function width(container) {
    return Math.max(320, Math.min(1100, (container.parentElement || container).clientWidth - 20 || 800));
  }

  /** Whether the x scale shows all of the data it was given (nothing zoomed in). */
  function showsAll(u) {
    const xs = u.data[0];
    if (!xs || !xs.length) return true;
    const s = u.scales.x;
    return s.min == null || (s.min <= xs[0] && s.max >= xs[xs.length - 1]);
  }

  function mark(container, xs, extra) {
    container.dataset.points = String(xs.length);
    Object.assign(container.dataset, extra || {});
  }

  /** A line chart of one metric: {steps, values, x, count, shown} from /api/trial. */
  TB.lineChart = function (container, key, name, series) {
    const opts = {
      width: width(container),
      height: 240,
      scales: { x: { time: false } },
      series: [
        { label: series.x },
        { label: name, stroke: COLOR, width: 1.5, points: { show: series.shown <= 100 } },
      ],
      axes: [{ label: series.x }, {}],
      cursor: { drag: { x: true, y: false } },
    };
    const u = new uPlot(opts, [series.steps, series.values], container);
    registry[key] = u;
    mark(container, series.steps, { count: String(series.count) });
    return {
      u,
      update(s) {
        u.setData([s.steps, s.values], showsAll(u));
        mark(container, s.steps, { count: String(s.count) });
      },
      destroy() {
        delete registry[key];
        u.destroy();
      },
    };
  };

  /** A scatter of y against x for many trials: {xs, ys, uids, x, y} from /api/scatter. */
  TB.scatterChart = function (container, key, data, options) {
    const info = TB.el("div", { class: "hover-info muted", text: "hover a point; click opens the trial" });
    let uids = data.uids;
    let pressed = null;
    const opts = {
      width: width(container),
      height: 360,
      scales: { x: { time: false, distr: options.logx ? 3 : 1 } },
      series: [
        { label: data.x },
        {
          label: data.y,
          stroke: COLOR,
          fill: COLOR + "55",
          paths: () => null,
          points: { show: true, size: 8, stroke: COLOR, fill: COLOR + "88" },
        },
      ],
      axes: [{ label: data.x }, { label: data.y }],
      cursor: { drag: { x: true, y: true, uni: 20 }, points: { size: 12 } },
      legend: { show: true },
      hooks: {
        setCursor: [
          (u) => {
            const i = u.cursor.idx;
            info.textContent = i == null || uids[i] === undefined ? "hover a point; click opens the trial"
              : "trial " + uids[i] + "  x=" + TB.fmt(u.data[0][i]) + "  y=" + TB.fmt(u.data[1][i]);
          },
        ],
      },
    };
    const u = new uPlot(opts, [data.xs, data.ys], container);
    container.after(info);
    u.over.addEventListener("mousedown", (e) => (pressed = [e.clientX, e.clientY]));
    u.over.addEventListener("click", (e) => {
      const moved = pressed && Math.hypot(e.clientX - pressed[0], e.clientY - pressed[1]) > 3;
      const i = u.cursor.idx;
      if (!moved && i != null && uids[i] !== undefined) location.hash = TB.trialHref(uids[i]);
    });
    registry[key] = u;
    mark(container, data.xs);
    return {
      u,
      update(d) {
        uids = d.uids;
        u.setData([d.xs, d.ys], showsAll(u));
        mark(container, d.xs);
      },
      destroy() {
        delete registry[key];
        info.remove();
        u.destroy();
      },
    };
  };

  window.addEventListener("resize", () => {
    for (const u of Object.values(registry)) u.setSize({ width: width(u.root.parentElement), height: u.height });
  });
})(window.TB);
