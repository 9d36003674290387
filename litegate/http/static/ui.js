// Shared by the dashboard's pages: DOM building (createElement/textContent only, never innerHTML with
// data), formatting, the admin API client, tables (with CSV export and a phone layout), cards, tiles,
// badges, meters, the range control, polling.
export const PAGE = document.body.dataset.page;
export const CSRF = document.querySelector('meta[name="csrf-token"]')?.content || "";
export const main = document.getElementById("main");
export const RANGES = [
  { id: "1h", label: "Hour", s: 3600, bucket: 60 },
  { id: "24h", label: "Day", s: 86400, bucket: 1800 },
  { id: "7d", label: "Week", s: 7 * 86400, bucket: 6 * 3600 },
  { id: "30d", label: "30 days", s: 30 * 86400, bucket: 86400 },
];

// ---------------------------------------------------------------- helpers
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k === "onclick") el.addEventListener("click", v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

export function fmtInt(n) {
  if (n === null || n === undefined) return "—";
  const a = Math.abs(n);
  if (a >= 1e9) return `${(n / 1e9).toFixed(1)}B`;
  if (a >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (a >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return String(Math.round(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}
export function plural(n, word) {
  return `${fmtInt(n)} ${word}${n === 1 ? "" : "s"}`;
}
export function fmtCost(c) {
  if (!c) return "$0";
  if (Math.abs(c) < 0.0001) return "<$0.0001";
  if (Math.abs(c) < 0.01) return `$${c.toFixed(4)}`;
  return `$${c.toFixed(2)}`;
}
export function fmtMs(ms) {
  if (ms === null || ms === undefined) return "—";
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}
export function fmtPct(part, whole) {
  if (!whole) return "0%";
  const p = (100 * part) / whole;
  return p > 0 && p < 0.1 ? "<0.1%" : `${p.toFixed(p < 10 ? 1 : 0)}%`;
}
export function fmtBytes(b) {
  if (b === null || b === undefined) return "—";
  if (b >= 1e9) return `${(b / 1e9).toFixed(1)} GB`;
  if (b >= 1e6) return `${(b / 1e6).toFixed(0)} MB`;
  return `${b} B`;
}
export function fmtTime(ts) {
  return ts ? new Date(ts * 1000).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" }) : "—";
}
export function fmtAgo(ts) {
  if (!ts) return "—";
  const s = Math.max(0, Date.now() / 1000 - ts);
  if (s < 60) return `${Math.round(s)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${(s / 3600).toFixed(1)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}
export function fmtElapsed(s) {
  return s < 60 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

export class SignedOut extends Error {}

export async function api(path, options = {}) {
  const headers = { accept: "application/json", ...(options.headers || {}) };
  if (options.method && options.method !== "GET") headers["X-CSRF-Token"] = CSRF;
  const resp = await fetch(path, { credentials: "same-origin", cache: "no-store", ...options, headers });
  if (resp.status === 401) {
    location.assign(`/ui/login?next=${encodeURIComponent(location.pathname + location.search)}`);
    throw new SignedOut("signed out");
  }
  const body = await resp.json().catch(() => null);
  if (!resp.ok) throw new Error(body?.error?.message || `${resp.status} ${resp.statusText}`);
  return body;
}

// A table; on a phone each row becomes a block of "label value" lines (CSS, from data-label), so nothing
// is hidden off to the side. Every table has a CSV button that downloads exactly the rows it shows.
export function table(columns, rows, { empty = "Nothing yet.", rowAttrs, name = "table" } = {}) {
  if (!rows.length) return h("p", { class: "empty", text: empty });
  const head = h("tr", {}, columns.map((c) => h("th", { class: c.num ? "num" : null, text: c.label })));
  const body = rows.map((r) => h("tr", rowAttrs ? rowAttrs(r) : {},
    columns.map((c) => h("td", { class: c.num ? "num" : c.wrap ? "wrap" : null, "data-field": c.field || null,
      "data-label": c.label }, c.cell(r)))));
  const button = h("button", { type: "button", class: "link small csv", "data-csv": name, text: "CSV" });
  button.addEventListener("click", () => download(`litegate-${name}.csv`, toCSV(columns, rows)));
  return h("div", { class: "table-box" }, h("div", { class: "table-tools" }, button),
    h("div", { class: "table-wrap" }, h("table", {}, h("thead", {}, head), h("tbody", {}, body))));
}

// CSV of the rows as the table shows them: a column's `csv(row)` when it has one (raw numbers), else the
// text of its cell.
export function toCSV(columns, rows) {
  const quote = (v) => {
    let s = v === null || v === undefined ? "" : String(v);
    if (/^[=+@\t]/.test(s)) s = `'${s}`; // a spreadsheet must not read a name as a formula
    return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  const text = (c, r) => {
    if (c.csv) return c.csv(r);
    const v = c.cell(r);
    return v instanceof Node ? v.textContent : v;
  };
  return [columns.map((c) => quote(c.label)).join(","),
    ...rows.map((r) => columns.map((c) => quote(text(c, r))).join(","))].join("\r\n") + "\r\n";
}

export function download(filename, text) {
  const url = URL.createObjectURL(new Blob([text], { type: "text/csv;charset=utf-8" }));
  const a = h("a", { href: url, download: filename });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
  document.body.dataset.lastCsv = text; // what was exported, for the browser tests
}

export function card(title, ...children) {
  return h("section", { class: "card" }, h("div", { class: "card-head" }, h("h2", { text: title })), children);
}

export function tile(stat, label, value, sub) {
  return h("div", { class: "tile", "data-stat": stat },
    h("div", { class: "label", text: label }), h("div", { class: "value", text: value }),
    h("div", { class: "sub", text: sub || "\u00a0" }));
}

export function badge(kind, text) {
  return h("span", { class: `badge ${kind}`, text });
}

export function meter(used, limit, share = false) {
  const frac = limit ? Math.min(1, used / limit) : 0;
  const level = share ? " share" : frac >= 1 ? " bad" : frac >= 0.8 ? " warn" : "";
  const m = h("div", { class: `meter${level}`, role: "meter",
    "aria-valuemin": 0, "aria-valuemax": limit || 0, "aria-valuenow": used });
  const fill = h("span");
  fill.style.width = `${(frac * 100).toFixed(1)}%`; // CSSOM, which the CSP allows (a style attribute it would not)
  m.append(fill);
  return m;
}

export function currentRange(fallback = defaultRange()) {
  const id = new URLSearchParams(location.search).get("range") || fallback;
  return RANGES.find((r) => r.id === id) || RANGES.find((r) => r.id === fallback);
}

export function rangeControl(selected, onChange) {
  const seg = h("div", { class: "seg", role: "group", "aria-label": "Time range" });
  for (const r of RANGES) {
    seg.append(h("button", { type: "button", "aria-pressed": r.id === selected.id ? "true" : "false",
      "data-range": r.id, text: r.label, onclick: () => {
        const url = new URL(location.href);
        url.searchParams.set("range", r.id);
        history.replaceState(null, "", url);
        onChange(r);
      } }));
  }
  return seg;
}

export function setReady() {
  document.body.dataset.ready = "1";
  document.body.dataset.renders = String(Number(document.body.dataset.renders || 0) + 1);
}

export function showError(err) {
  if (err instanceof SignedOut) return;
  const note = h("p", { class: "notice", role: "alert", id: "page-error", text: `Could not load: ${err.message}` });
  document.getElementById("page-error")?.remove();
  main.prepend(note);
  document.body.dataset.error = err.message;
}

// Poll while the tab is visible; a failed poll shows a notice and the next one tries again.
export function poll(fn, everyMs) {
  let timer = null;
  const tick = async () => {
    clearTimeout(timer);
    if (!document.hidden) {
      try {
        await fn();
        document.getElementById("page-error")?.remove();
      } catch (e) {
        showError(e);
      }
    }
    timer = setTimeout(tick, everyMs);
  };
  document.addEventListener("visibilitychange", () => { if (!document.hidden) tick(); });
  return tick();
}

export function inFlight(live) {
  return live.in_flight.filter((c) => c.model); // the dashboard's own polls have no model
}

// The range a page opens on when the address names none: Hour while all the data there is fits in it
// (a new install), else Day. The overview learns when the first request was (setFirstRequest).
let firstRequestAt = null;
export function setFirstRequest(ts) {
  firstRequestAt = ts;
}
export function defaultRange() {
  return firstRequestAt === null || Date.now() / 1000 - firstRequestAt < 3600 ? "1h" : "24h";
}


export function classBadge(klass) {
  if (!klass) return "";
  return badge(klass === "backend" ? "bad" : klass === "policy" ? "warn" : "idle", klass);
}
