// litegate dashboard: fills the page shell from the admin JSON API. No framework, no build step.
// DOM is built with createElement/textContent only (never innerHTML with data), so a model or key
// name cannot inject markup; the CSP forbids inline scripts and styles anyway. Shared helpers are in
// ui.js; the Requests and Keys pages in requests.js and keys.js.
import { arrange, bucketsOf, legend, lineChart, lineLegend, setNameOrder, stackedBars } from "./charts.js";
import { keysPage } from "./keys.js";
import { requestsPage } from "./requests.js";
import {
  PAGE, api, badge, card, currentRange, fmtAgo, fmtCost, fmtElapsed, fmtInt, fmtMs, fmtPct, fmtTime, fmtBytes,
  classBadge, h, inFlight, main, meter, plural, poll, rangeControl, setFirstRequest, setReady, showError, table, tile, SignedOut,
} from "./ui.js";

const METRICS = {
  requests: { label: "Requests", value: (p) => p.requests, format: fmtInt },
  tokens: { label: "Tokens", value: (p) => p.prompt_tokens + p.completion_tokens, format: fmtInt },
  cost: { label: "Cost", value: (p) => p.cost, format: fmtCost },
};
const ERRORS = { label: "Failed requests", value: (p) => p.errors, format: fmtInt };
const RETRIES = { label: "Requests", value: (p) => (p.series && p.series !== "direct" ? p.requests : 0), format: fmtInt };
const ROUTE_WORDS = "direct: the model asked for · alias:x: a name mapped to a model · rule:x / default: a virtual "
  + "model's rule chose · fallback:x: the model failed, its fallback answered · context:x: the prompt was too long "
  + "for the model · +retry: answered on a retry";

// ---------------------------------------------------------------- overview
const charts = [];
const fixedCharts = []; // charts whose metric does not follow the metric buttons

async function overview() {
  const glance = h("div", { class: "grid two", id: "glance" });
  if (!new URLSearchParams(location.search).get("range")) { // Hour while all the data fits in it
    setFirstRequest((await api("/admin/usage?since=1h")).first_at ?? null);
  }
  main.replaceChildren(
    glance,
    h("div", { class: "bar" }, h("h2", { text: "Usage" }), h("span", { class: "spacer" }),
      rangeControl(currentRange(), () => renderUsage().catch(showError))),
    h("div", { id: "usage" }),
  );
  await poll(async () => { // everything on the overview refreshes every 30 s
    const [week, backends] = await Promise.all([api("/ui/api/key-models?since=7d"), api("/admin/backends")]);
    setNameOrder(backends.deployments.map((d) => d.name)); // a model's colour is its place in the config
    glance.replaceChildren(healthCard(backends), weekCard(week)); // health first: what a phone shows first
    await renderUsage();
  }, 30000);
}

async function renderUsage() {
  const range = currentRange();
  document.querySelectorAll("[data-range]").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.range === range.id)));
  const q = `since=${range.id}`;
  const ts = (split) => api(`/admin/timeseries?${q}&bucket_s=${range.bucket}&split_by=${split}`);
  const [total, byModel, byModelTs, byKeyTs, errors, live, byClassTs, latency, routes, routesTs, faces] =
    await Promise.all([
      api(`/admin/usage?${q}`), api(`/admin/usage?${q}&group_by=model`), ts("model"), ts("key"),
      api("/admin/errors?limit=10"), api("/admin/live"), ts("error_class"),
      api(`/admin/latency?${q}&bucket_s=${range.bucket}`), api(`/admin/usage?${q}&group_by=route`), ts("route"),
      api(`/admin/usage?${q}&group_by=face`),
    ]);
  const t = total.rows[0] || { requests: 0, errors: 0, prompt_tokens: 0, completion_tokens: 0, cost: 0,
    backend_errors: 0, policy_errors: 0, client_errors: 0 };
  const metric = METRICS[document.body.dataset.metric || "requests"];
  charts.length = 0;
  fixedCharts.length = 0;
  const box = document.getElementById("usage");
  box.replaceChildren(
    h("div", { class: "tiles" },
      tile("requests", "Requests", fmtInt(t.requests), `${fmtInt(t.errors)} failed`),
      tile("tokens", "Tokens", fmtInt(t.prompt_tokens + t.completion_tokens),
        `${fmtInt(t.prompt_tokens)} in · ${fmtInt(t.completion_tokens)} out`),
      tile("cost", "Cost", fmtCost(t.cost), t.cached_tokens ? `${fmtInt(t.cached_tokens)} cached tokens` : ""),
      tile("error_rate", "Model errors", fmtPct(t.backend_errors, t.requests), `${fmtInt(t.backend_errors)} of ${fmtInt(t.requests)}`),
      tile("refused", "Refused", fmtInt(t.policy_errors + t.client_errors),
        `${fmtInt(t.policy_errors)} by limits · ${fmtInt(t.client_errors)} client`),
      tile("latency", "Latency p50", fmtMs(t.latency_p50_ms), `p95 ${fmtMs(t.latency_p95_ms)}`),
      tile("ttft", "First token p50", fmtMs(t.ttft_p50_ms), `p95 ${fmtMs(t.ttft_p95_ms)}`),
      tile("in_flight", "In flight now", fmtInt(inFlight(live).length), "see Live"),
    ),
    h("div", { class: "bar" }, h("span", { class: "spacer" }), metricControl()),
    h("div", { class: "grid two" },
      chartCard("By model", byModelTs, range, "model"), chartCard("By key", byKeyTs, range, "key")),
    ...[teamCard(total.team)].filter(Boolean),
    h("div", { class: "grid two" },
      fixedChartCard("Errors by class", "errors", byClassTs, range, ERRORS,
        "backend: a model or the way to it failed · policy: a key's limits, budget or rights · client: bad request, key or model name"),
      latencyCard(latency, range)),
    h("div", { class: "grid two" }, routingCard(routes.rows, routesTs, range), speedCard(latency.speed)),
    card("Models", modelTable(byModel.rows)),
    card("Client APIs", faceTable(faces.rows)),
    card("Recent errors", errorTable(errors.errors),
      h("p", { class: "small" }, h("a", { href: "/ui/requests?error_class=any", text: "All failed requests →" }))),
  );
  drawCharts(metric);
  setReady();
}

function fixedChartCard(title, id, ts, range, metric, note) {
  const box = h("div", { class: "chart", "data-chart": id });
  const readout = h("p", { class: "small muted readout", text: "Tap or hover a bar for its numbers." });
  const legendBox = h("div");
  fixedCharts.push({ box, readout, legendBox, ts, range, metric });
  return h("section", { class: "card", "data-card": id }, h("div", { class: "card-head" }, h("h2", { text: title })),
    box, legendBox, readout, note ? h("p", { class: "muted small", text: note }) : null);
}

function latencyCard(latency, range) {
  const box = h("div", { class: "chart", "data-chart": "latency" });
  const readout = h("p", { class: "small muted readout", text: "Tap or hover for the numbers." });
  const legendBox = h("div");
  const buckets = bucketsOf(latency.since, Date.now() / 1000, range.bucket);
  const at = new Map(latency.points.map((p) => [p.t, p]));
  const series = [["latency p95", "latency_p95_ms"], ["latency p50", "latency_p50_ms"], ["first token p95", "ttft_p95_ms"]]
    .map(([name, field]) => ({ name, values: buckets.map((t) => at.get(t)?.[field] ?? null) }));
  fixedCharts.push({ draw: () => {
    if (!latency.points.length) {
      box.replaceChildren(h("p", { class: "empty", text: "No requests in this range." }));
      return;
    }
    lineChart(box, buckets, series, { bucketS: range.bucket, spanS: range.s, format: fmtMs, readout });
    legendBox.replaceChildren(lineLegend(series));
  } });
  return h("section", { class: "card", "data-card": "latency" },
    h("div", { class: "card-head" }, h("h2", { text: "Latency and first token" })), box, legendBox, readout);
}

function routingCard(rows, ts, range) {
  const total = rows.reduce((a, r) => a + r.requests, 0);
  const sorted = [...rows].sort((a, b) => b.requests - a.requests);
  const box = h("div", { class: "chart", "data-chart": "routing" });
  const readout = h("p", { class: "small muted readout", text: "Tap or hover a bar for its numbers." });
  const legendBox = h("div");
  fixedCharts.push({ box, readout, legendBox, ts, range, metric: RETRIES });
  return h("section", { class: "card", "data-card": "routing" },
    h("div", { class: "card-head" }, h("h2", { text: "Routing: what chose the deployment" })),
    table([
      { label: "Route", field: "route", cell: (r) => r.group ?? "(refused before routing)", csv: (r) => r.group ?? "" },
      { label: "Requests", num: true, field: "requests", cell: (r) => fmtInt(r.requests), csv: (r) => r.requests },
      { label: "Share", num: true, cell: (r) => fmtPct(r.requests, total) },
      { label: "Model errors", num: true, cell: (r) => fmtInt(r.backend_errors), csv: (r) => r.backend_errors },
    ], sorted, { empty: "No requests in this range.", name: "routes", rowAttrs: (r) => ({ "data-route": r.group ?? "" }) }),
    h("h3", { text: "Not answered directly, over time" }), box, legendBox, readout,
    h("p", { class: "muted small", text: ROUTE_WORDS }));
}

function speedCard(speed) {
  const local = (d) => d.deployment.startsWith("ollama/");
  const rows = [...speed].sort((a, b) => local(b) - local(a) || (b.tokens_per_s || 0) - (a.tokens_per_s || 0));
  return card("Generation speed", table([
    { label: "Deployment", wrap: true, field: "deployment", cell: (d) => d.deployment },
    { label: "Where", cell: (d) => (local(d) ? badge("ok", "local") : badge("idle", "remote")), csv: (d) => (local(d) ? "local" : "remote") },
    { label: "Tokens/s", num: true, field: "tokens_per_s", cell: (d) => (d.tokens_per_s === null ? "—" : d.tokens_per_s.toFixed(1)),
      csv: (d) => d.tokens_per_s },
    { label: "Requests", num: true, cell: (d) => fmtInt(d.requests), csv: (d) => d.requests },
    { label: "Tokens out", num: true, cell: (d) => fmtInt(d.completion_tokens), csv: (d) => d.completion_tokens },
  ], rows, { empty: "No answered requests in this range.", name: "speed",
    rowAttrs: (d) => ({ "data-deployment": d.deployment }) }),
  h("p", { class: "muted small", text: "Completion tokens per second of generating (after the first token when it is known)." }));
}

function modelTable(rows) {
  return table([
    { label: "Model", cell: (r) => r.group || "(none: refused before it was read)", csv: (r) => r.group ?? "" },
    { label: "Requests", num: true, field: "requests", cell: (r) => fmtInt(r.requests), csv: (r) => r.requests },
    { label: "Model errors", num: true, field: "errors", cell: (r) => fmtInt(r.backend_errors), csv: (r) => r.backend_errors },
    { label: "Refused", num: true, cell: (r) => fmtInt(r.policy_errors + r.client_errors), csv: (r) => r.policy_errors + r.client_errors },
    { label: "Tokens in", num: true, cell: (r) => fmtInt(r.prompt_tokens), csv: (r) => r.prompt_tokens },
    { label: "Tokens out", num: true, cell: (r) => fmtInt(r.completion_tokens), csv: (r) => r.completion_tokens },
    { label: "Cost", num: true, cell: (r) => fmtCost(r.cost), csv: (r) => r.cost },
    { label: "p50", num: true, cell: (r) => fmtMs(r.latency_p50_ms), csv: (r) => r.latency_p50_ms },
    { label: "p95", num: true, cell: (r) => fmtMs(r.latency_p95_ms), csv: (r) => r.latency_p95_ms },
    { label: "TTFT p50", num: true, cell: (r) => fmtMs(r.ttft_p50_ms), csv: (r) => r.ttft_p50_ms },
    { label: "Searches", num: true, cell: (r) => fmtInt(r.server_tool_calls), csv: (r) => r.server_tool_calls },
  ], [...rows].sort((a, b) => b.requests - a.requests), { empty: "No requests in this range.", name: "models",
    rowAttrs: (r) => ({ "data-model": r.group }) });
}

function faceTable(rows) {
  // Which API the clients spoke: openai (chat completions), anthropic (Claude Code), ollama, ...
  return table([
    { label: "API", field: "face", cell: (r) => r.group ?? "—" },
    { label: "Requests", num: true, field: "requests", cell: (r) => fmtInt(r.requests), csv: (r) => r.requests },
    { label: "Failed", num: true, field: "errors", cell: (r) => fmtInt(r.errors), csv: (r) => r.errors },
    { label: "Tokens in", num: true, cell: (r) => fmtInt(r.prompt_tokens), csv: (r) => r.prompt_tokens },
    { label: "Tokens out", num: true, cell: (r) => fmtInt(r.completion_tokens), csv: (r) => r.completion_tokens },
  ], [...rows].sort((a, b) => b.requests - a.requests), { empty: "No requests in this range.", name: "faces",
    rowAttrs: (r) => ({ "data-face": r.group }) });
}

function errorTable(errors) {
  return table([
    { label: "When", cell: (e) => fmtAgo(e.time), csv: (e) => new Date(e.time * 1000).toISOString() },
    { label: "Key", cell: (e) => e.key },
    { label: "Model", cell: (e) => e.model },
    { label: "Status", num: true, cell: (e) => String(e.status) },
    { label: "Class", field: "class", cell: (e) => classBadge(e.error_class), csv: (e) => e.error_class || "" },
    { label: "Error", wrap: true, cell: (e) => e.error_code || "" },
    { label: "Deployment", wrap: true, cell: (e) => e.deployment || "—" },
  ], errors, { empty: "No failed requests recorded.", name: "errors" });
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
  for (const c of fixedCharts) {
    if (c.draw) {
      c.draw();
      continue;
    }
    const data = arrange(c.ts.points, { since: c.ts.since, now: Date.now() / 1000, bucketS: c.range.bucket,
      value: c.metric.value });
    if (!data.names.length) {
      c.box.replaceChildren(h("p", { class: "empty", text: "None in this range." }));
      c.legendBox.replaceChildren();
      continue;
    }
    stackedBars(c.box, data, { bucketS: c.range.bucket, spanS: c.range.s, format: c.metric.format, readout: c.readout });
    c.legendBox.replaceChildren(legend(data, c.metric.format));
  }
}

function weekCard(week) {
  const blocks = week.keys.map((k) => h("div", { class: "keyblock", "data-key": k.key },
    h("div", { class: "card-head" }, h("h3", { text: k.key }),
      h("span", { class: "muted small", text: `${plural(k.requests, "request")} · ${plural(k.tokens, "token")}` })),
    k.models.slice(0, 3).map((m, i) => h("div", { class: "share-row", "data-model": m.model, "data-rank": i + 1 },
      h("span", { class: "name", text: m.model || "(none)", title: m.model }), meter(m.requests, k.requests, true),
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
    { label: "Requests", num: true, cell: (r) => fmtInt(r.requests), csv: (r) => r.requests },
    { label: "Failed", num: true, cell: (r) => fmtInt(r.errors), csv: (r) => r.errors },
    { label: "Tokens in", num: true, cell: (r) => fmtInt(r.prompt_tokens), csv: (r) => r.prompt_tokens },
    { label: "Tokens out", num: true, cell: (r) => fmtInt(r.completion_tokens), csv: (r) => r.completion_tokens },
    { label: "Cost", num: true, cell: (r) => fmtCost(r.cost), csv: (r) => r.cost },
  ], rows, { empty: "No usage in this range yet.", name: "team" }));
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
  resizeTimer = setTimeout(() => (charts.length || fixedCharts.length) && drawCharts(METRICS[document.body.dataset.metric || "requests"]), 150);
});

const PAGES = { overview, requests: requestsPage, live, backends: backendsPage, keys: keysPage, config: configPage };
wireLogout();
(PAGES[PAGE] || overview)().catch(showError);
