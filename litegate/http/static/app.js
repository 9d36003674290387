// litegate dashboard: fills the page shell from the admin JSON API. No framework, no build step.
// DOM is built with createElement/textContent only (never innerHTML with data), so a model or key
// name cannot inject markup; the CSP forbids inline scripts and styles anyway.
import { arrange, legend, stackedBars } from "./charts.js";

const PAGE = document.body.dataset.page;
const CSRF = document.querySelector('meta[name="csrf-token"]')?.content || "";
const main = document.getElementById("main");
const RANGES = [
  { id: "1h", label: "Hour", s: 3600, bucket: 60 },
  { id: "24h", label: "Day", s: 86400, bucket: 1800 },
  { id: "7d", label: "Week", s: 7 * 86400, bucket: 6 * 3600 },
  { id: "30d", label: "30 days", s: 30 * 86400, bucket: 86400 },
];
const METRICS = {
  requests: { label: "Requests", value: (p) => p.requests, format: fmtInt },
  tokens: { label: "Tokens", value: (p) => p.prompt_tokens + p.completion_tokens, format: fmtInt },
  cost: { label: "Cost", value: (p) => p.cost, format: fmtCost },
};

// ---------------------------------------------------------------- helpers
function h(tag, attrs = {}, ...children) {
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
function plural(n, word) {
  return `${fmtInt(n)} ${word}${n === 1 ? "" : "s"}`;
}
export function fmtCost(c) {
  if (!c) return "$0";
  if (Math.abs(c) < 0.0001) return "<$0.0001";
  if (Math.abs(c) < 0.01) return `$${c.toFixed(4)}`;
  return `$${c.toFixed(2)}`;
}
function fmtMs(ms) {
  if (ms === null || ms === undefined) return "—";
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}
function fmtPct(part, whole) {
  if (!whole) return "0%";
  const p = (100 * part) / whole;
  return p > 0 && p < 0.1 ? "<0.1%" : `${p.toFixed(p < 10 ? 1 : 0)}%`;
}
function fmtBytes(b) {
  if (b === null || b === undefined) return "—";
  if (b >= 1e9) return `${(b / 1e9).toFixed(1)} GB`;
  if (b >= 1e6) return `${(b / 1e6).toFixed(0)} MB`;
  return `${b} B`;
}
function fmtTime(ts) {
  return ts ? new Date(ts * 1000).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" }) : "—";
}
function fmtAgo(ts) {
  if (!ts) return "—";
  const s = Math.max(0, Date.now() / 1000 - ts);
  if (s < 60) return `${Math.round(s)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${(s / 3600).toFixed(1)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}
function fmtElapsed(s) {
  return s < 60 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

class SignedOut extends Error {}

async function api(path, options = {}) {
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

function table(columns, rows, { empty = "Nothing yet.", rowAttrs } = {}) {
  if (!rows.length) return h("p", { class: "empty", text: empty });
  const head = h("tr", {}, columns.map((c) => h("th", { class: c.num ? "num" : null, text: c.label })));
  const body = rows.map((r) => h("tr", rowAttrs ? rowAttrs(r) : {},
    columns.map((c) => h("td", { class: c.num ? "num" : c.wrap ? "wrap" : null, "data-field": c.field || null },
      c.cell(r)))));
  return h("div", { class: "table-wrap" }, h("table", {}, h("thead", {}, head), h("tbody", {}, body)));
}

function card(title, ...children) {
  return h("section", { class: "card" }, h("div", { class: "card-head" }, h("h2", { text: title })), children);
}

function tile(stat, label, value, sub) {
  return h("div", { class: "tile", "data-stat": stat },
    h("div", { class: "label", text: label }), h("div", { class: "value", text: value }),
    h("div", { class: "sub", text: sub || "\u00a0" }));
}

function badge(kind, text) {
  return h("span", { class: `badge ${kind}`, text });
}

function meter(used, limit, share = false) {
  const frac = limit ? Math.min(1, used / limit) : 0;
  const level = share ? " share" : frac >= 1 ? " bad" : frac >= 0.8 ? " warn" : "";
  const m = h("div", { class: `meter${level}`, role: "meter",
    "aria-valuemin": 0, "aria-valuemax": limit || 0, "aria-valuenow": used });
  const fill = h("span");
  fill.style.width = `${(frac * 100).toFixed(1)}%`; // CSSOM, which the CSP allows (a style attribute it would not)
  m.append(fill);
  return m;
}

function currentRange(fallback = "24h") {
  const id = new URLSearchParams(location.search).get("range") || fallback;
  return RANGES.find((r) => r.id === id) || RANGES.find((r) => r.id === fallback);
}

function rangeControl(selected, onChange) {
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

function setReady() {
  document.body.dataset.ready = "1";
  document.body.dataset.renders = String(Number(document.body.dataset.renders || 0) + 1);
}

function showError(err) {
  if (err instanceof SignedOut) return;
  const note = h("p", { class: "notice", role: "alert", id: "page-error", text: `Could not load: ${err.message}` });
  document.getElementById("page-error")?.remove();
  main.prepend(note);
  document.body.dataset.error = err.message;
}

// Poll while the tab is visible; a failed poll shows a notice and the next one tries again.
function poll(fn, everyMs) {
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

function inFlight(live) {
  return live.in_flight.filter((c) => c.model); // the dashboard's own polls have no model
}

// ---------------------------------------------------------------- overview
const charts = [];

async function overview() {
  const glance = h("div", { class: "grid two", id: "glance" });
  main.replaceChildren(
    glance,
    h("div", { class: "bar" }, h("h2", { text: "Usage" }), h("span", { class: "spacer" }),
      rangeControl(currentRange(), () => renderUsage().catch(showError))),
    h("div", { id: "usage" }),
  );
  await poll(async () => { // everything on the overview refreshes every 30 s
    const [week, backends] = await Promise.all([api("/ui/api/key-models?since=7d"), api("/admin/backends")]);
    glance.replaceChildren(weekCard(week), healthCard(backends));
    await renderUsage();
  }, 30000);
}

async function renderUsage() {
  const range = currentRange();
  document.querySelectorAll("[data-range]").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.range === range.id)));
  const q = `since=${range.id}`;
  const [total, byModel, byModelTs, byKeyTs, errors, live, byFace] = await Promise.all([
    api(`/admin/usage?${q}`), api(`/admin/usage?${q}&group_by=model`),
    api(`/admin/timeseries?${q}&bucket_s=${range.bucket}&split_by=model`),
    api(`/admin/timeseries?${q}&bucket_s=${range.bucket}&split_by=key`),
    api("/admin/errors?limit=10"), api("/admin/live"), api(`/admin/usage?${q}&group_by=face`),
  ]);
  const t = total.rows[0] || { requests: 0, errors: 0, prompt_tokens: 0, completion_tokens: 0, cost: 0, server_tool_calls: 0 };
  const metric = METRICS[document.body.dataset.metric || "requests"];
  charts.length = 0;
  const box = document.getElementById("usage");
  box.replaceChildren(
    h("div", { class: "tiles" },
      tile("requests", "Requests", fmtInt(t.requests), `${fmtInt(t.errors)} failed`),
      tile("tokens", "Tokens", fmtInt(t.prompt_tokens + t.completion_tokens),
        `${fmtInt(t.prompt_tokens)} in · ${fmtInt(t.completion_tokens)} out`),
      tile("cost", "Cost", fmtCost(t.cost), t.cached_tokens ? `${fmtInt(t.cached_tokens)} cached tokens` : ""),
      tile("error_rate", "Error rate", fmtPct(t.errors, t.requests), `${fmtInt(t.errors)} of ${fmtInt(t.requests)}`),
      tile("latency", "Latency p50", fmtMs(t.latency_p50_ms), `p95 ${fmtMs(t.latency_p95_ms)}`),
      tile("ttft", "First token p50", fmtMs(t.ttft_p50_ms), `p95 ${fmtMs(t.ttft_p95_ms)}`),
      tile("searches", "Searches", fmtInt(t.server_tool_calls), "server-side tool calls"),
      tile("in_flight", "In flight now", fmtInt(inFlight(live).length), "see Live"),
    ),
    h("div", { class: "bar" }, h("span", { class: "spacer" }), metricControl()),
    h("div", { class: "grid two" },
      chartCard("By model", byModelTs, range, "model"), chartCard("By key", byKeyTs, range, "key")),
    ...[teamCard(total.team)].filter(Boolean),
    card("Models", modelTable(byModel.rows)),
    card("Client APIs", faceTable(byFace.rows)),
    card("Recent errors", errorTable(errors.errors)),
  );
  drawCharts(metric);
  setReady();
}

function metricControl() {
  const seg = h("div", { class: "seg", role: "group", "aria-label": "Chart metric" });
  for (const [id, m] of Object.entries(METRICS)) {
    seg.append(h("button", { type: "button", "data-metric": id, text: m.label,
      "aria-pressed": String((document.body.dataset.metric || "requests") === id), onclick: () => {
        document.body.dataset.metric = id;
        seg.querySelectorAll("button").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.metric === id)));
        drawCharts(METRICS[id]);
      } }));
  }
  return seg;
}

function chartCard(title, ts, range, split) {
  const box = h("div", { class: "chart", "data-chart": split });
  const readout = h("p", { class: "small muted readout", text: "Tap or hover a bar for its numbers." });
  const legendBox = h("div");
  charts.push({ box, readout, legendBox, ts, range });
  return h("section", { class: "card" }, h("div", { class: "card-head" }, h("h2", { text: title }),
    h("span", { class: "muted small", "data-chart-title": split })), box, legendBox, readout);
}

function drawCharts(metric) {
  for (const c of charts) {
    const data = arrange(c.ts.points, { since: c.ts.since, now: Date.now() / 1000, bucketS: c.range.bucket,
      value: metric.value });
    c.box.parentElement.querySelector("[data-chart-title]").textContent = metric.label;
    if (!c.ts.points.length) {
      c.box.replaceChildren(h("p", { class: "empty", text: "No requests in this range." }));
      c.legendBox.replaceChildren();
      continue;
    }
    stackedBars(c.box, data, { bucketS: c.range.bucket, spanS: c.range.s, format: metric.format, readout: c.readout });
    c.legendBox.replaceChildren(legend(data, metric.format));
  }
}

function modelTable(rows) {
  return table([
    { label: "Model", cell: (r) => r.group ?? "—" },
    { label: "Requests", num: true, field: "requests", cell: (r) => fmtInt(r.requests) },
    { label: "Errors", num: true, field: "errors", cell: (r) => fmtInt(r.errors) },
    { label: "Tokens in", num: true, cell: (r) => fmtInt(r.prompt_tokens) },
    { label: "Tokens out", num: true, cell: (r) => fmtInt(r.completion_tokens) },
    { label: "Cost", num: true, cell: (r) => fmtCost(r.cost) },
    { label: "p50", num: true, cell: (r) => fmtMs(r.latency_p50_ms) },
    { label: "p95", num: true, cell: (r) => fmtMs(r.latency_p95_ms) },
    { label: "TTFT p50", num: true, cell: (r) => fmtMs(r.ttft_p50_ms) },
    { label: "Searches", num: true, cell: (r) => fmtInt(r.server_tool_calls) },
  ], [...rows].sort((a, b) => b.requests - a.requests), { empty: "No requests in this range.",
    rowAttrs: (r) => ({ "data-model": r.group }) });
}

function faceTable(rows) {
  // Which API the clients spoke: openai (chat completions), anthropic (Claude Code), ...
  return table([
    { label: "API", cell: (r) => r.group ?? "—" },
    { label: "Requests", num: true, field: "requests", cell: (r) => fmtInt(r.requests) },
    { label: "Errors", num: true, field: "errors", cell: (r) => fmtInt(r.errors) },
    { label: "Tokens in", num: true, cell: (r) => fmtInt(r.prompt_tokens) },
    { label: "Tokens out", num: true, cell: (r) => fmtInt(r.completion_tokens) },
  ], [...rows].sort((a, b) => b.requests - a.requests), { empty: "No requests in this range." });
}

function errorTable(errors) {
  return table([
    { label: "When", cell: (e) => fmtAgo(e.time) },
    { label: "Key", cell: (e) => e.key },
    { label: "Model", cell: (e) => e.model },
    { label: "Status", num: true, cell: (e) => String(e.status) },
    { label: "Error", wrap: true, cell: (e) => e.error_code || "" },
    { label: "Deployment", wrap: true, cell: (e) => e.deployment || "—" },
  ], errors, { empty: "No failed requests recorded." });
}

function weekCard(week) {
  const blocks = week.keys.map((k) => h("div", { class: "keyblock", "data-key": k.key },
    h("div", { class: "card-head" }, h("h3", { text: k.key }),
      h("span", { class: "muted small", text: `${plural(k.requests, "request")} · ${plural(k.tokens, "token")}` })),
    k.models.slice(0, 3).map((m, i) => h("div", { class: "share-row", "data-model": m.model, "data-rank": i + 1 },
      h("span", { class: "name", text: m.model, title: m.model }), meter(m.requests, k.requests, true),
      h("span", { class: "num small", "data-field": "requests", text: fmtInt(m.requests) }))),
    k.models.length > 3 ? h("p", { class: "muted small", text: `+ ${k.models.length - 3} more models` }) : null));
  return card("This week: top models per key",
    blocks.length ? blocks : h("p", { class: "empty", text: "No requests in the last 7 days." }));
}

function ollamaChips(backends) {
  return Object.entries(backends.loaded_models).map(([base, s]) => {
    const host = base.replace(/^https?:\/\//, "");
    return h("span", { class: "chip", "data-server": base, title: s.ok ? "" : s.error || "" },
      h("i", { class: `dot ${s.ok ? "ok" : "bad"}` }), h("span", { class: "name", text: `Ollama ${host}` }),
      s.ok ? badge("ok", `up · ${s.models.length} loaded`) : badge("bad", "down"));
  });
}

function stateOf(d) {
  if (d.state === "down") return ["bad", "down"];
  if (d.state === "cooling_down") return ["warn", "cooling down"];
  if (d.last_error && d.errors && d.errors >= d.requests) return ["bad", "failing"];
  return ["ok", "healthy"];
}

function healthCard(backends) {
  const deps = backends.deployments;
  const count = (label) => deps.filter((d) => stateOf(d)[1] === label).length;
  const [down, cooling, failing] = [count("down"), count("cooling down"), count("failing")];
  const servers = ollamaChips(backends);
  return card("Backends",
    h("p", { class: "small", "data-field": "summary" }, `${count("healthy")} of ${deps.length} deployments healthy`,
      down ? `, ${down} down` : "", cooling ? `, ${cooling} cooling down` : "", failing ? `, ${failing} failing` : ""),
    sharedState(backends.state),
    servers.length ? h("div", { class: "chips" }, servers)
      : h("p", { class: "muted small", text: "Ollama is not polled (router.ollama_poll_s is 0)." }),
    h("div", { class: "chips", "data-field": "deployments" }, deps.slice(0, 12).map((d) => {
      const [kind, label] = stateOf(d);
      return h("span", { class: "chip", "data-deployment": d.id, title: `${d.id}: ${label}` },
        h("i", { class: `dot ${kind}` }), h("span", { class: "name", text: d.name }),
        d.in_flight ? badge("idle", `${d.in_flight} running`) : null);
    }), deps.length > 12 ? h("a", { href: "/ui/backends", text: `all ${deps.length}…` }) : null),
  );
}

// ---------------------------------------------------------------- live
async function live() {
  const status = h("span", { class: "muted small", id: "live-status" });
  const list = h("div", { id: "live-list" });
  const deps = h("div", { id: "live-deployments" });
  main.replaceChildren(
    h("section", { class: "card" }, h("div", { class: "card-head" },
      h("h2", {}, "In flight now ", h("span", { class: "badge idle", id: "live-count", text: "0" })), status), list),
    card("Deployments", deps),
  );
  await poll(async () => {
    const [now, backends] = await Promise.all([api("/admin/live"), api("/admin/backends")]);
    const calls = inFlight(now).sort((a, b) => b.elapsed_s - a.elapsed_s);
    document.getElementById("live-count").textContent = String(calls.length);
    list.replaceChildren(table([
      { label: "Model", field: "model", cell: (c) => c.model },
      { label: "Key", field: "key", cell: (c) => c.key || "—" },
      { label: "Elapsed", num: true, field: "elapsed", cell: (c) => fmtElapsed(c.elapsed_s) },
      { label: "Streaming", field: "stream", cell: (c) => (c.stream ? badge("ok", "streaming") : badge("idle", "not streaming")) },
      { label: "Deployment", wrap: true, cell: (c) => c.deployment || "—" },
      { label: "Request", wrap: true, cell: (c) => h("code", { text: c.request_id }) },
    ], calls, { empty: "Nothing running right now.", rowAttrs: (c) => ({ "data-request-id": c.request_id }) }));
    deps.replaceChildren(deploymentTable(backends.deployments.filter((d) => d.in_flight || d.queued),
      "No deployment is busy."));
    status.textContent = `updated ${new Date().toLocaleTimeString()} · every 2 s`;
    setReady();
  }, 2000);
}

// ---------------------------------------------------------------- backends
function deploymentTable(deps, empty = "No deployments configured.") {
  return table([
    { label: "Deployment", wrap: true, cell: (d) => h("span", {}, h("b", { text: d.name }), h("br"),
      h("span", { class: "muted small", text: d.id })) },
    { label: "State", field: "state", cell: (d) => {
      const [kind, label] = stateOf(d);
      return h("span", {}, badge(kind, label), d.cooling_until
        ? h("span", { class: "muted small", text: ` until ${new Date(d.cooling_until * 1000).toLocaleTimeString()}` }) : null);
    } },
    { label: "In flight", num: true, field: "in_flight",
      cell: (d) => (d.max_parallel ? `${d.in_flight} / ${d.max_parallel}` : String(d.in_flight)) },
    { label: "Queued", num: true, cell: (d) => String(d.queued) },
    { label: "Latency p50", num: true, cell: (d) => fmtMs(d.p50_ms) },
    { label: "Requests", num: true, cell: (d) => fmtInt(d.requests) },
    { label: "Errors", num: true, cell: (d) => fmtInt(d.errors) },
    { label: "Last error", wrap: true, cell: (d) => d.last_error || "" },
    { label: "Loaded", cell: (d) => (d.loaded === true ? badge("ok", "loaded") : d.loaded === false ? badge("idle", "not loaded") : "—") },
  ], deps, { empty, rowAttrs: (d) => ({ "data-deployment": d.id }) });
}

function serverCard(base, s) {
  const models = s.models || [];
  return h("section", { class: "card", "data-server": base },
    h("div", { class: "card-head" }, h("h2", { text: `Ollama ${base.replace(/^https?:\/\//, "")}` }),
      s.ok ? badge("ok", "up") : badge("bad", "down")),
    s.ok ? null : h("p", { class: "error small", text: s.error || "unreachable" }),
    h("p", { class: "muted small", text: `checked ${fmtAgo(s.checked_at)}` }),
    s.ok ? table([
      { label: "Model", field: "name", cell: (m) => m.name },
      { label: "Size", num: true, field: "size", cell: (m) => fmtBytes(m.size) },
      { label: "In VRAM", num: true, field: "size_vram", cell: (m) => fmtBytes(m.size_vram) },
      { label: "GPU", num: true, cell: (m) => (m.size ? fmtPct(m.size_vram || 0, m.size) : "—") },
      { label: "Context", num: true, cell: (m) => fmtInt(m.context_length) },
      { label: "Unloads", cell: (m) => (m.expires_at ? new Date(m.expires_at).toLocaleTimeString() : "—") },
    ], models, { empty: "No model loaded.", rowAttrs: (m) => ({ "data-model": m.name }) }) : null);
}

function sharedState(s) { // state shared with other instances through Redis: is it reachable?
  if (!s || !s.shared) return null;
  const how = s.fail_open ? "limits counted by this instance alone" : "keys with limits refused";
  return h("p", { class: "small", "data-field": "state" },
    s.up ? badge("ok", "shared state connected") : badge("bad", "shared state unreachable"),
    ` ${s.url} as ${s.instance}`,
    s.up ? "" : ` since ${fmtTime(s.down_since)}: ${how}; reconnecting`);
}

function teamCard(team) { // every instance's usage, from the counters they share in Redis
  if (!team) return null;
  if (!team.available) return card("Team", h("p", { class: "muted", text: "The shared state store is unreachable." }));
  const rows = Object.entries(team.instances).map(([name, r]) => ({ name, ...r[0] }));
  if (team.total.length) rows.push({ name: "all instances", ...team.total[0] });
  return card("Team (all instances)", table([
    { label: "Instance", cell: (r) => r.name },
    { label: "Requests", num: true, cell: (r) => fmtInt(r.requests) },
    { label: "Failed", num: true, cell: (r) => fmtInt(r.errors) },
    { label: "Tokens in", num: true, cell: (r) => fmtInt(r.prompt_tokens) },
    { label: "Tokens out", num: true, cell: (r) => fmtInt(r.completion_tokens) },
    { label: "Cost", num: true, cell: (r) => fmtCost(r.cost) },
  ], rows, { empty: "No usage in this range yet." }));
}

async function backendsPage() {
  const deps = h("div");
  const servers = h("div", { id: "servers" });
  const status = h("span", { class: "muted small" });
  main.replaceChildren(h("section", { class: "card" },
    h("div", { class: "card-head" }, h("h2", { text: "Deployments" }), status), deps), servers);
  await poll(async () => {
    const b = await api("/admin/backends");
    deps.replaceChildren(deploymentTable(b.deployments));
    const entries = Object.entries(b.loaded_models);
    servers.replaceChildren(...(entries.length ? entries.map(([base, s]) => serverCard(base, s))
      : [card("Ollama", h("p", { class: "muted", text: "Loaded models are not polled: set router.ollama_poll_s above 0." }))]));
    status.textContent = `updated ${new Date().toLocaleTimeString()} · every 5 s`;
    setReady();
  }, 5000);
}

// ---------------------------------------------------------------- keys
function limitRow(label, used, limit, format = fmtInt, always = false) {
  if (!limit && !always) return null;
  return h("div", { class: "share-row", "data-limit": label },
    h("span", { class: "name small", text: label }),
    limit ? meter(used, limit) : h("span", { class: "muted small", text: "no limit" }),
    h("span", { class: "num small", text: limit ? `${format(used)} / ${format(limit)} · ${format(Math.max(0, limit - used))} left` : format(used) }));
}

function keyCard(name, lim, use) {
  const u = use || { requests: 0, errors: 0, prompt_tokens: 0, completion_tokens: 0, cost: 0, latency_p50_ms: null };
  return h("section", { class: "card", "data-key": name },
    h("div", { class: "card-head" }, h("h2", { text: name }),
      h("span", { class: "chips" }, lim?.admin ? badge("idle", "admin") : null,
        lim?.revoked ? badge("bad", "revoked") : null)),
    lim ? h("p", { class: "muted small", text: `models: ${lim.models.join(", ")}` }) : null,
    h("div", { class: "tiles" },
      tile("requests", "Requests", fmtInt(u.requests), `${fmtInt(u.errors)} failed`),
      tile("tokens", "Tokens", fmtInt(u.prompt_tokens + u.completion_tokens), `${fmtInt(u.completion_tokens)} out`),
      tile("cost", "Cost", fmtCost(u.cost)),
      tile("latency", "Latency p50", fmtMs(u.latency_p50_ms))),
    lim ? h("div", { class: "limits" },
      h("h3", { text: "Limits and budgets" }),
      limitRow("Requests / min", lim.requests_last_minute, lim.rpm),
      limitRow("Tokens / min", lim.tokens_last_minute, lim.tpm),
      limitRow("Concurrent", lim.concurrent, lim.max_concurrent),
      limitRow("Tokens today", lim.tokens_today, lim.tokens_per_day, fmtInt, true),
      limitRow("Tokens this month", lim.tokens_this_month, lim.tokens_per_month, fmtInt, true),
      limitRow("Cost this month", lim.cost_this_month, lim.cost_per_month, fmtCost, true),
      limitRow("Searches today", lim.searches_today, lim.searches_per_day)) : null);
}

async function keysPage() {
  const box = h("div", { id: "keys" });
  const render = async () => {
    const range = currentRange("7d");
    document.querySelectorAll("[data-range]").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.range === range.id)));
    const [limits, usage] = await Promise.all([api("/admin/limits"), api(`/admin/usage?since=${range.id}&group_by=key`)]);
    const use = new Map(usage.rows.map((r) => [r.group, r]));
    const lims = new Map(limits.keys.map((k) => [k.name, k]));
    const names = [...new Set([...lims.keys(), ...use.keys()])]
      .sort((a, b) => (use.get(b)?.requests || 0) - (use.get(a)?.requests || 0) || String(a).localeCompare(String(b)));
    box.replaceChildren(names.length ? h("div", { class: "grid two" }, names.map((n) => keyCard(n, lims.get(n), use.get(n))))
      : card("Keys", h("p", { class: "empty", text: "No keys configured and no usage recorded." })));
    setReady();
  };
  main.replaceChildren(h("div", { class: "bar" }, h("h2", { text: "Keys" }), h("span", { class: "spacer" }),
    rangeControl(currentRange("7d"), () => render().catch(showError))), box);
  await render();
}

// ---------------------------------------------------------------- config
function reloadNotice(result) {
  return h("p", { class: "notice ok", role: "status", id: "reload-result", text: `Reloaded at ${fmtTime(result.loaded_at)}.` });
}

function refusalNotice(message) {
  return h("p", { class: "notice", role: "alert", id: "reload-result" }, "Reload refused; the running config is unchanged. ",
    h("br"), h("code", { text: message || "see the log" }));
}

async function configPage() {
  const facts = h("div", { id: "facts" });
  const pre = h("pre", { class: "config", id: "config-json" });
  const result = h("div", { id: "reload-slot" });
  const button = h("button", { type: "button", class: "primary", id: "reload" }, "Reload config");
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      result.replaceChildren(reloadNotice(await api("/admin/reload", { method: "POST" })));
      await render();
    } catch (e) {
      result.replaceChildren(refusalNotice(e.message));
      await render();
    } finally {
      button.disabled = false;
    }
  });
  const render = async () => {
    const c = await api("/admin/config");
    const last = c.last_reload || {};
    const store = c.usage_store;
    facts.replaceChildren(h("dl", { class: "facts" },
      h("dt", { text: "File" }), h("dd", {}, h("code", { text: c.path })),
      h("dt", { text: "Loaded" }), h("dd", { "data-field": "loaded_at", text: `${fmtTime(c.loaded_at)} (${fmtAgo(c.loaded_at)})` }),
      h("dt", { text: "Last reload" }), h("dd", { "data-field": "last_reload" },
        last.ok ? badge("ok", "ok") : badge("bad", "refused"), ` ${fmtTime(last.at)}`,
        last.ok ? null : h("pre", { class: "config", text: last.error || "" })),
      h("dt", { text: "Usage store" }), h("dd", {}, store
        ? `${store.available ? "available" : "unavailable"} · ${fmtInt(store.rows_pending ?? 0)} pending · ${fmtInt(store.rows_dropped ?? 0)} dropped`
        : "disabled"),
    ));
    pre.textContent = JSON.stringify(c.config, null, 2);
    setReady();
  };
  main.replaceChildren(
    h("section", { class: "card" }, h("div", { class: "card-head" }, h("h2", { text: "Running config" }), button),
      result, facts),
    card("Config (secrets removed)", pre),
  );
  await render();
}

// ---------------------------------------------------------------- start
function wireLogout() {
  document.getElementById("logout")?.addEventListener("click", async () => {
    try {
      await api("/ui/logout", { method: "POST" });
    } catch (e) {
      if (e instanceof SignedOut) return;
    }
    location.assign("/ui/login");
  });
}

let resizeTimer = null;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => charts.length && drawCharts(METRICS[document.body.dataset.metric || "requests"]), 150);
});

const PAGES = { overview, live, backends: backendsPage, keys: keysPage, config: configPage };
wireLogout();
(PAGES[PAGE] || overview)().catch(showError);
