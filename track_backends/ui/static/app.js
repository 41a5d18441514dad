/* The dashboard: a hash router over four views (projects, trials table, trial, group), each with a
   refresh() that the poller calls every few seconds. Data is rendered with TB.el (textContent only). */
"use strict";

(function (TB) {
  const main = document.getElementById("main");
  const banner = document.getElementById("banner");
  const updated = document.getElementById("updated");
  let view = null; // {refresh: async () => void, dispose: () => void}
  let generation = 0;
  let pollMs = 4000;

  function setBanner(err) {
    banner.hidden = !err;
    banner.textContent = err ? "Cannot reach the dashboard's server: " + err.message : "";
  }

  function stamp() {
    updated.textContent = "updated " + new Date().toLocaleTimeString();
  }

  function parseHash() {
    const h = location.hash.replace(/^#/, "") || "/";
    const [path, qs] = h.split("?", 2);
    return { parts: path.split("/").filter(Boolean).map(decodeURIComponent), params: new URLSearchParams(qs || "") };
  }

  /* ---------- projects and groups ---------- */
  function overviewView() {
    const root = TB.el("div");
    let last = "";
    async function refresh() {
      const d = await TB.api("/api/overview");
      const sig = JSON.stringify(d);
      if (sig === last) return; // unchanged: keep the DOM (and any text selection) as it is
      last = sig;
      const sections = [
        TB.el("h1", { text: "Projects" }),
        TB.el("p", {}, TB.el("a", { href: TB.trialsHref(), text: "All " + TB.plural(d.all.total, "trial") }), " ", TB.counts(d.all)),
      ];
      const cols = ["group", "trials"].concat(d.statuses, ["other"]);
      for (const p of d.projects) {
        sections.push(TB.el("h2", { text: p.name === null ? "(no project)" : String(p.name) }));
        if (p.description) sections.push(TB.el("p", { class: "muted", text: p.description }));
        sections.push(TB.el("p", {}, TB.counts(p)));
        const rows = p.groups.map((g) => TB.el("tr", { dataset: { group: g.uid } },
          TB.el("td", {}, TB.el("a", { href: TB.groupHref(g.uid), text: TB.fmt(g.name) })),
          TB.el("td", { class: "num" }, TB.el("a", { href: TB.trialsHref({ q: JSON.stringify({ group_id: g.uid }) }), text: g.total })),
          cols.slice(2).map((s) => TB.el("td", { class: "num", text: g.by_status[s] || "" }))));
        if (rows.length) sections.push(TB.el("div", { class: "table-wrap" }, TB.el("table", { class: "groups" },
          TB.el("thead", {}, TB.el("tr", {}, cols.map((c) => TB.el("th", { text: c })))), TB.el("tbody", {}, rows))));
      }
      if (d.outside.total) {
        sections.push(TB.el("h2", { text: "Trials outside any stored group" }),
          TB.el("p", {}, TB.el("a", { href: TB.trialsHref({ q: JSON.stringify(d.outside.query) }), text: TB.plural(d.outside.total, "trial") }),
            " ", TB.counts(d.outside)));
      }
      if (!d.projects.length && !d.outside.total) sections.push(TB.el("p", { class: "muted", text: "The store holds no trials yet." }));
      TB.fill(root, sections);
    }
    return { root, refresh };
  }

  /* ---------- trials table ---------- */
  function trialsView(params) {
    const state = { q: params.get("q") || "", sort: params.get("sort") || "", dir: params.get("dir") || "1",
      page: Number(params.get("page") || 0), size: params.get("size") || "50" };
    const go = (change) => (location.hash = TB.trialsHref(Object.assign({}, state, change)));
    const input = TB.el("input", { type: "text", id: "query", value: state.q, spellcheck: "false",
      placeholder: '{"status.name": "Completed", "parameters.lr": {"$lt": 0.01}}', "aria-label": "query" });
    const apply = () => go({ q: input.value.trim(), page: 0 });
    input.addEventListener("keydown", (e) => { if (e.key === "Enter") apply(); });
    const error = TB.el("div", { id: "query-error", class: "error", role: "alert", hidden: true });
    const total = TB.el("span", { id: "total" });
    const pager = TB.el("div", { class: "pager" });
    const table = TB.el("table", { id: "trials" });
    const root = TB.el("div", {}, TB.el("h1", { text: "Trials" }),
      TB.el("div", { class: "toolbar" }, input, TB.el("button", { id: "apply", text: "Filter", onclick: apply }),
        TB.el("button", { text: "Clear", onclick: () => go({ q: "", page: 0 }) })),
      error, TB.el("p", {}, total), TB.el("div", { class: "table-wrap" }, table), pager);

    function header(label, path) {
      const sorted = state.sort === path;
      const arrow = sorted ? (state.dir === "-1" ? " ▼" : " ▲") : "";
      return TB.el("th", { class: "sortable" + (sorted ? " sorted" : ""), text: label + arrow, title: "sort by " + path,
        dataset: { sort: path }, onclick: () => go({ sort: path, dir: sorted && state.dir === "1" ? "-1" : "1", page: 0 }) });
    }

    function render(d) {
      const params = d.columns.parameters;
      const metrics = d.columns.metrics;
      const heads = [TB.el("th", { text: "uid" }), header("status", "status.name"), TB.el("th", { text: "group" }),
        TB.el("th", { text: "owner" })];
      params.forEach((p) => heads.push(header(p, "parameters." + p)));
      metrics.forEach((m) => ["min", "last", "max"].forEach((s) => heads.push(header(m + "." + s, "metric_summary." + m + "." + s))));
      const rows = d.trials.map((t) => TB.el("tr", { dataset: { uid: t.uid } },
        TB.el("td", {}, TB.el("a", { href: TB.trialHref(t.uid), text: TB.short(t.uid, 12), title: t.uid })),
        TB.el("td", {}, TB.badge(t.status)),
        TB.el("td", {}, t.group_id ? TB.el("a", { href: TB.groupHref(t.group_id), text: TB.short(t.group_id, 10) }) : "—"),
        TB.el("td", { text: TB.fmt(t.owner) }),
        params.map((p) => TB.el("td", { class: TB.isNum(t.parameters[p]) ? "num" : "", text: TB.fmt(t.parameters[p]) })),
        metrics.map((m) => ["min", "last", "max"].map((s) => {
          const v = (t.metrics[m] || {})[s];
          return TB.el("td", { class: "num", dataset: { metric: m + "." + s }, text: TB.fmt(v) });
        }))));
      TB.fill(table, TB.el("thead", {}, TB.el("tr", {}, heads)), TB.el("tbody", {}, rows));
      total.textContent = TB.plural(d.total, "trial") + (state.q ? " match the query" : "");
      const size = TB.el("select", { "aria-label": "page size", onchange: (e) => go({ size: e.target.value, page: 0 }) },
        ["25", "50", "100", "200"].map((s) => TB.el("option", { value: s, text: s + " per page", selected: s === String(d.size) })));
      TB.fill(pager, TB.el("button", { text: "← previous", disabled: d.page <= 0, onclick: () => go({ page: d.page - 1 }) }),
        TB.el("span", { id: "page", text: "page " + (d.page + 1) + " of " + d.pages }),
        TB.el("button", { text: "next →", disabled: d.page + 1 >= d.pages, onclick: () => go({ page: d.page + 1 }) }), size);
    }

    let last = "";
    async function refresh() {
      try {
        const d = await TB.api("/api/trials", state);
        if (!d.trials.length && d.page > 0 && d.page >= d.pages) return go({ page: d.pages - 1 }); // the rows went away
        const sig = JSON.stringify(d);
        if (sig !== last) render(d);
        last = sig;
        error.hidden = true;
      } catch (e) {
        if (!(e instanceof TB.ApiError) || e.status !== 400) throw e;
        last = "";
        error.textContent = e.kind + ": " + e.message;
        error.hidden = false;
        total.textContent = "";
        TB.fill(table);
        TB.fill(pager);
      }
    }
    return { root, refresh };
  }

  TB.views = Object.assign(TB.views || {}, { overviewView, trialsView });
  TB.app = { parseHash, setBanner, stamp };

  /* ---------- the router and the poller ---------- */
  async function run(v, gen) {
    try {
      await v.refresh();
      if (gen === generation) {
        setBanner(null);
        stamp();
      }
    } catch (e) {
      if (gen !== generation) return;
      if (e instanceof TB.ApiError && e.status === 404) TB.fill(main, TB.el("h1", { text: "Not found" }), TB.el("p", { class: "error", text: e.message }));
      else setBanner(e);
    }
  }

  function route() {
    if (view && view.dispose) view.dispose();
    generation += 1;
    const { parts, params } = parseHash();
    if (parts[0] === "trials") view = trialsView(params);
    else if (parts[0] === "trial" && parts[1] !== undefined) view = TB.views.trialView(parts.slice(1).join("/"));
    else if (parts[0] === "group" && parts[1] !== undefined) view = TB.views.groupView(parts.slice(1).join("/"), params);
    else view = overviewView();
    TB.fill(main, view.root);
    window.scrollTo(0, 0);
    main.dataset.loaded = "false";
    const gen = generation;
    run(view, gen).then(() => { if (gen === generation) main.dataset.loaded = "true"; });
  }

  /* Poll every pollMs, but never spend more than a quarter of the time waiting for the server:
     a slow answer (a sort over a huge store) stretches the interval instead of queueing requests. */
  async function poll() {
    let wait = pollMs;
    try {
      if (!document.hidden && view) {
        const t0 = performance.now();
        await run(view, generation);
        wait = Math.max(pollMs, 4 * (performance.now() - t0));
      }
    } finally {
      setTimeout(poll, wait);
    }
  }

  async function start() {
    try {
      const cfg = await TB.api("/api/config");
      pollMs = Math.max(500, cfg.poll_seconds * 1000);
    } catch (e) {
      setBanner(e);
    }
    window.addEventListener("hashchange", route);
    route();
    setTimeout(poll, pollMs);
  }

  document.addEventListener("DOMContentLoaded", start);
})(window.TB);
