/* DOM and API helpers for the dashboard. Every value reaches the page through textContent or
   createTextNode (never innerHTML), so data can never become markup. */
"use strict";
window.TB = window.TB || {};

(function (TB) {
  /** Build an element: el("a", {href: "#/", class: "x", text: "hi", onclick: fn}, child, "text"). */
  TB.el = function (tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "text") e.textContent = String(v);
      else if (k === "class") e.className = v;
      else if (k === "dataset") Object.assign(e.dataset, v);
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat(Infinity)) {
      if (c === undefined || c === null || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  };

  /** Replace the children of a node. */
  TB.fill = function (node, ...children) {
    node.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
    return node;
  };

  /** A value as text: numbers with up to 6 significant digits, objects as JSON, null as a dash. */
  TB.fmt = function (v) {
    if (v === null || v === undefined) return "—";
    if (typeof v === "number") {
      if (Number.isInteger(v)) return String(v);
      const a = Math.abs(v);
      return a !== 0 && (a < 1e-4 || a >= 1e6) ? v.toExponential(4) : String(Number(v.toPrecision(6)));
    }
    if (typeof v === "string") return v;
    return JSON.stringify(v);
  };

  TB.plural = (n, word) => n + " " + word + (n === 1 ? "" : "s");

  TB.isNum = (v) => typeof v === "number" && Number.isFinite(v);

  /** A time in seconds since the epoch as local time. */
  TB.time = function (t) {
    return TB.isNum(t) ? new Date(t * 1000).toLocaleString() : TB.fmt(t);
  };

  /** A route to a trial, a group, or the trials table with a query. */
  TB.trialHref = (uid) => "#/trial/" + encodeURIComponent(uid);
  TB.groupHref = (gid) => "#/group/" + encodeURIComponent(gid);
  TB.trialsHref = function (params) {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(params || {})) if (v !== undefined && v !== null && v !== "") p.set(k, v);
    const s = p.toString();
    return "#/trials" + (s ? "?" + s : "");
  };

  TB.short = (s, n) => (typeof s === "string" && s.length > n ? s.slice(0, n) + "…" : TB.fmt(s));

  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.message) || "HTTP " + status);
      this.status = status;
      this.kind = (body && body.error) || "HTTP " + status;
    }
  }
  TB.ApiError = ApiError;

  /** GET a JSON route; a non-2xx answer throws ApiError with the server's message. */
  TB.api = async function (path, params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params || {})) if (v !== undefined && v !== null && v !== "") q.set(k, v);
    const url = path + (q.toString() ? "?" + q.toString() : "");
    const r = await fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" });
    let body = null;
    try {
      body = await r.json();
    } catch (e) {
      body = null;
    }
    if (!r.ok) throw new ApiError(r.status, body);
    return body;
  };

  /** A status badge. */
  TB.badge = function (name, count) {
    const text = count === undefined ? TB.fmt(name) : TB.fmt(name) + " " + count;
    return TB.el("span", { class: "badge s-" + String(name).replace(/[^A-Za-z0-9_-]/g, "_"), text });
  };

  /** Badges for {"total", "by_status"} counts. */
  TB.counts = function (c) {
    const out = [];
    for (const [name, n] of Object.entries(c.by_status || {})) out.push(TB.badge(name, n));
    if (!out.length) out.push(TB.el("span", { class: "muted", text: "no trials" }));
    return TB.el("span", { class: "counts" }, out);
  };

  /** Flatten nested objects into dotted paths, as the server does for parameters. */
  TB.flatten = function (value, prefix, out) {
    out = out || {};
    if (value && typeof value === "object" && !Array.isArray(value) && Object.keys(value).length) {
      for (const [k, v] of Object.entries(value)) TB.flatten(v, prefix ? prefix + "." + k : k, out);
    } else if (prefix) out[prefix] = value;
    return out;
  };

  /** A two-column key/value table (values flattened); an empty object shows a dash. */
  TB.kvTable = function (obj, cls) {
    const flat = TB.flatten(obj || {}, "");
    const keys = Object.keys(flat);
    if (!keys.length) return TB.el("p", { class: "muted", text: "—" });
    return TB.el("table", { class: "kv " + (cls || "") },
      TB.el("tbody", {}, keys.map((k) => TB.el("tr", {}, TB.el("td", { text: k }), TB.el("td", { text: TB.fmt(flat[k]) })))));
  };

  /** A table from rows of objects with the given columns. */
  TB.table = function (columns, rows, cls) {
    return TB.el("table", { class: cls || "" },
      TB.el("thead", {}, TB.el("tr", {}, columns.map((c) => TB.el("th", { text: c })))),
      TB.el("tbody", {}, rows.map((r) => TB.el("tr", {}, columns.map((c) =>
        TB.el("td", { class: TB.isNum(r[c]) ? "num" : "", text: TB.fmt(r[c]) }))))));
  };
})(window.TB);
