/* The trial page (document, lease, curves) and the group page (counts, parameter/metric scatter). */
"use strict";
window.TB = window.TB || {};
TB.views = TB.views || {};

(function (TB) {
  const el = TB.el;
  const KNOWN = ["parameters", "metadata", "status", "lease", "errors", "chronos", "metric_summary", "tags"];

  function section(title, ...body) {
    return el("section", { class: "section", dataset: { section: title.toLowerCase() } }, el("h2", { text: title }), body);
  }

  function leaseTable(lease, now) {
    if (!lease || typeof lease !== "object") return el("p", { class: "muted", text: "no lease" });
    const rows = Object.assign({}, lease);
    if (TB.isNum(lease.expires)) {
      const left = lease.expires - now;
      rows.expires = TB.time(lease.expires) + (left >= 0 ? " (in " + Math.round(left) + " s)" : " (expired " + Math.round(-left) + " s ago)");
    }
    return TB.kvTable(rows, "lease");
  }

  function chronosTable(chronos) {
    const names = Object.keys(chronos || {});
    if (!names.length) return el("p", { class: "muted", text: "—" });
    const cols = ["name", "count", "total", "mean", "min", "max", "sd"];
    return TB.table(cols, names.map((n) => Object.assign({ name: n }, chronos[n])), "chronos");
  }

  function summaryTable(summary) {
    const names = Object.keys(summary || {});
    if (!names.length) return el("p", { class: "muted", text: "no metrics logged" });
    const cols = ["metric", "count", "min", "max", "last", "last_step"];
    return TB.table(cols, names.map((n) => Object.assign({ metric: n }, summary[n])), "summary");
  }

  function artifactsTable(uid, artifacts) {
    if (!artifacts || !artifacts.length) return el("p", { class: "muted", text: "no artifacts" });
    const head = el("tr", {}, ["name", "size", "media type", "sha256"].map((c) => el("th", { text: c })));
    const rows = artifacts.map((a) => el("tr", {},
      el("td", {}, el("a", {
        href: "/api/artifact/" + encodeURIComponent(uid) + "?name=" + encodeURIComponent(a.name),
        download: a.name.split("/").pop(), text: a.name,
      })),
      el("td", { class: "num", text: TB.fmt(a.size) }),
      el("td", { text: a.media_type }),
      el("td", {}, el("code", { title: a.sha256, text: a.sha256.slice(0, 12) }))));
    return el("table", { class: "artifacts" }, el("thead", {}, head), el("tbody", {}, rows));
  }

  function trialView(uid) {
    const head = el("div");
    const details = el("div", { class: "grid" });
    const curves = el("div", { id: "curves" });
    const charts = {};
    let last = "";
    const root = el("div", {}, head, el("h2", { text: "Curves" }),
      el("p", { class: "muted", text: "Drag to zoom, double-click to zoom out; hover shows values." }), curves, details);

    function drawCurves(metrics) {
      const names = Object.keys(metrics);
      for (const name of Object.keys(charts)) {
        if (!names.includes(name)) {
          charts[name].handle.destroy();
          charts[name].box.remove();
          delete charts[name];
        }
      }
      for (const name of names) {
        const s = metrics[name];
        let note = s.shown < s.count ? "showing " + s.shown + " of " + s.count + " points, evenly thinned" : TB.plural(s.count, "point");
        if (s.gaps) note += " (" + TB.plural(s.gaps, "value") + " not finite, drawn as gaps)";
        if (charts[name]) {
          charts[name].handle.update(s);
          charts[name].note.textContent = note;
          continue;
        }
        const plot = el("div", { class: "plot", dataset: { metric: name } });
        const noteEl = el("span", { class: "muted", text: note });
        const box = el("div", { class: "chart" }, el("h3", {}, name + " ", noteEl), plot);
        curves.append(box);
        charts[name] = { box, note: noteEl, handle: TB.lineChart(plot, "trial:" + name, name, s) };
      }
      if (!names.length) TB.fill(curves, el("p", { class: "muted", id: "no-curves", text: "No metric points logged." }));
      else { const none = curves.querySelector("#no-curves"); if (none) none.remove(); }
    }

    async function refresh() {
      const d = await TB.api("/api/trial/" + encodeURIComponent(uid));
      const sig = JSON.stringify([d.trial, d.metrics, d.artifacts]);
      if (sig === last) return; // unchanged: keep the DOM, the zoom and any text selection
      last = sig;
      const t = d.trial;
      const status = (t.status && t.status.name) || t.status;
      TB.fill(head, el("h1", {}, "Trial ", el("code", { text: t.uid })),
        el("p", {}, TB.badge(status), t.name ? "name " + TB.fmt(t.name) + " · " : "",
          t.group_id ? el("a", { href: TB.groupHref(t.group_id), text: "group " + TB.short(t.group_id, 12) }) : "no group",
          t.project_id ? " · project " + TB.fmt(t.project_id) : "", " · revision " + TB.fmt(t.revision)));
      const other = {};
      for (const [k, v] of Object.entries(t)) if (!KNOWN.includes(k)) other[k] = v;
      TB.fill(details,
        section("Parameters", TB.kvTable(t.parameters, "parameters")),
        section("Artifacts", artifactsTable(t.uid, d.artifacts)),
        section("Metric summary", summaryTable(t.metric_summary)),
        section("Status", TB.kvTable(t.status, "status")),
        section("Lease", leaseTable(t.lease, d.now)),
        section("Metadata", TB.kvTable(t.metadata, "metadata")),
        section("Chronos", chronosTable(t.chronos)),
        section("Errors", (t.errors || []).length ? t.errors.map((e) => el("pre", { text: TB.fmt(e) })) : el("p", { class: "muted", text: "none" })),
        section("Tags", TB.kvTable(t.tags, "tags")),
        section("Other fields", TB.kvTable(other, "other")));
      drawCurves(d.metrics);
    }

    function dispose() {
      for (const c of Object.values(charts)) c.handle.destroy();
    }
    return { root, refresh, dispose };
  }

  function groupView(gid, params) {
    const state = { x: params.get("x") || "", y: params.get("y") || "", logx: params.get("logx") === "1" };
    const go = (change) => {
      const s = Object.assign({}, state, change);
      const p = new URLSearchParams({ x: s.x, y: s.y });
      if (s.logx) p.set("logx", "1");
      location.hash = TB.groupHref(gid) + "?" + p.toString();
    };
    const head = el("div");
    const xSel = el("select", { id: "scatter-x", "aria-label": "x axis", onchange: (e) => go({ x: e.target.value }) });
    const ySel = el("select", { id: "scatter-y", "aria-label": "y axis", onchange: (e) => go({ y: e.target.value }) });
    const logx = el("input", { type: "checkbox", id: "logx", checked: state.logx, onchange: (e) => go({ logx: e.target.checked }) });
    const note = el("p", { class: "muted" });
    const plotBox = el("div", { class: "chart" });
    let plot = null;
    let chart = null;
    const root = el("div", {}, head, el("h2", { text: "Parameter against metric" }),
      el("div", { class: "toolbar" }, el("label", {}, "x ", xSel), el("label", {}, "y ", ySel),
        el("label", {}, logx, " log x")), plotBox, note);

    function options(select, values, chosen) {
      const current = Array.from(select.options).map((o) => o.value).join("\n");
      if (current !== values.join("\n")) TB.fill(select, values.map((v) => el("option", { value: v, text: v })));
      select.value = chosen;
    }

    function draw(s) {
      const positive = s.xs.every((x) => x > 0);
      logx.disabled = !positive;
      const wantLog = state.logx && positive;
      if (!s.xs.length) {
        if (chart) chart.destroy();
        chart = null;
        TB.fill(plotBox, el("div", { id: "scatter", class: "plot", dataset: { points: "0" } },
          el("p", { class: "muted", text: "No trial has numbers on both axes." })));
      } else if (chart && chart.log === wantLog) chart.update(s);
      else {
        if (chart) chart.destroy();
        plot = el("div", { id: "scatter", class: "plot" });
        TB.fill(plotBox, plot);
        chart = TB.scatterChart(plot, "scatter", s, { logx: wantLog });
        chart.log = wantLog;
      }
      note.textContent = s.xs.length + " trials plotted" + (s.skipped ? ", " + s.skipped + " without numbers on both axes" : "") +
        (s.truncated ? " (the first " + (s.xs.length + s.skipped) + " trials only)" : "") + (state.logx && !positive ? "; log x needs x > 0" : "");
    }

    async function refresh() {
      const g = await TB.api("/api/group/" + encodeURIComponent(gid));
      const name = g.group ? g.group.name : gid;
      TB.fill(head, el("h1", {}, "Group ", el("span", { text: TB.fmt(name) })),
        g.group && g.group.description ? el("p", { class: "muted", text: g.group.description }) : null,
        el("p", {}, el("a", { href: TB.trialsHref({ q: JSON.stringify(g.query) }), text: TB.plural(g.total, "trial") }), " ", TB.counts(g),
          g.group ? "" : el("span", { class: "muted", text: " (no stored group document has this uid)" })));
      const x = g.x_axes.includes(state.x) ? state.x : g.x_axes[0] || "";
      const ym = g.y_axes.find((a) => a.endsWith(".min"));
      const y = g.y_axes.includes(state.y) ? state.y : ym || g.y_axes[0] || "";
      options(xSel, g.x_axes, x);
      options(ySel, g.y_axes, y);
      if (!x || !y) {
        TB.fill(plotBox, el("p", { class: "muted", text: "This group has no numeric parameter or no metric yet." }));
        return;
      }
      draw(await TB.api("/api/scatter", { q: JSON.stringify(g.query), x, y }));
    }

    function dispose() {
      if (chart) chart.destroy();
    }
    return { root, refresh, dispose };
  }

  TB.views.trialView = trialView;
  TB.views.groupView = groupView;
})(window.TB);
