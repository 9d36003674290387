// The Requests page: the request log, newest first, filtered by key, model, deployment, status, error class
// and API face (the filters live in the address, so a filtered view can be bookmarked or shared). Usage rows
// never hold a prompt or a reply, so neither can this page. CSV exports the rows shown.
import {
  RANGES, api, classBadge, fmtAgo, fmtCost, fmtInt, fmtMs, h, main, setReady, showError, table,
} from "./ui.js";

const FILTERS = [
  { id: "key", label: "Key" }, { id: "model", label: "Model" }, { id: "deployment", label: "Deployment" },
  { id: "status", label: "Status", width: "short" },
  { id: "error_class", label: "Outcome", options: [["", "any"], ["any", "failed"], ["backend", "backend error"],
    ["policy", "refused by policy"], ["client", "client error"]] },
  { id: "face", label: "Face" },
];
const PAGE_SIZE = 200;

function columns() {
  return [
    { label: "When", field: "time", cell: (r) => h("span", { title: new Date(r.time * 1000).toLocaleString(), text: fmtAgo(r.time) }),
      csv: (r) => new Date(r.time * 1000).toISOString() },
    { label: "Key", field: "key", cell: (r) => r.key },
    { label: "Model", field: "model", cell: (r) => r.model || "—", csv: (r) => r.model },
    { label: "Face", field: "face", cell: (r) => r.face },
    { label: "Deployment", field: "deployment", wrap: true, cell: (r) => r.deployment || "—", csv: (r) => r.deployment || "" },
    { label: "Route", field: "route", cell: (r) => r.route || "—", csv: (r) => r.route || "" },
    { label: "Status", field: "status", num: true, cell: (r) => String(r.status) },
    { label: "Class", field: "error_class", cell: (r) => classBadge(r.error_class), csv: (r) => r.error_class || "" },
    { label: "Error", field: "error_code", wrap: true, cell: (r) => r.error_code || "", csv: (r) => r.error_code || "" },
    { label: "Latency", num: true, field: "latency", cell: (r) => fmtMs(r.latency_ms), csv: (r) => r.latency_ms },
    { label: "TTFT", num: true, cell: (r) => fmtMs(r.ttft_ms), csv: (r) => r.ttft_ms ?? "" },
    { label: "Tokens in → out", num: true, cell: (r) => `${fmtInt(r.prompt_tokens)} → ${fmtInt(r.completion_tokens)}`,
      csv: (r) => `${r.prompt_tokens} -> ${r.completion_tokens}` },
    { label: "Cost", num: true, cell: (r) => fmtCost(r.cost), csv: (r) => r.cost },
    // the id in full is in the tooltip and the CSV; the start is enough to find it in the log
    { label: "Request id", cell: (r) => h("code", { title: r.request_id, text: r.request_id.length > 14
      ? `${r.request_id.slice(0, 12)}…` : r.request_id }), csv: (r) => r.request_id },
  ];
}

export async function requestsPage() {
  const params = new URLSearchParams(location.search);
  const span = RANGES.find((r) => r.id === params.get("since")) || RANGES[1];
  const form = h("form", { class: "filters", id: "request-filters" },
    h("label", {}, "Since", h("select", { name: "since" },
      RANGES.map((r) => h("option", { value: r.id, selected: r.id === span.id, text: r.label })))),
    FILTERS.map((f) => h("label", {}, f.label, f.options
      ? h("select", { name: f.id }, f.options.map(([v, t]) => h("option", { value: v, selected: (params.get(f.id) || "") === v, text: t })))
      : h("input", { name: f.id, value: params.get(f.id) || "", inputmode: f.id === "status" ? "numeric" : null,
        autocomplete: "off", spellcheck: "false" }))),
    h("button", { type: "submit", class: "primary", text: "Filter" }),
    h("a", { href: "/ui/requests", class: "small", text: "clear" }));
  const box = h("div", { id: "request-log" });
  const more = h("button", { type: "button", id: "older", text: "Older requests" });
  const status = h("span", { class: "muted small", id: "request-count" });
  main.replaceChildren(
    h("section", { class: "card" }, h("div", { class: "card-head" }, h("h2", { text: "Requests" }), status), form),
    h("section", { class: "card" }, box, more),
    h("p", { class: "muted small", text: "Each row is one request as accounted: who, which model and deployment, how it was "
      + "routed and how it ended. Prompts and replies are never stored." }));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const next = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (v) next.set(k, String(v).trim());
    history.replaceState(null, "", `/ui/requests?${next}`);
    load(next).catch(showError);
  });
  let rows = [];
  const load = async (query, before = null) => {
    const q = new URLSearchParams(query);
    if (!q.get("since")) q.set("since", span.id);
    q.set("limit", String(PAGE_SIZE));
    if (before !== null) q.set("before", String(before));
    const page = (await api(`/admin/requests?${q}`)).requests;
    rows = before === null ? page : rows.concat(page);
    box.replaceChildren(table(columns(), rows, { empty: "No request matches.", name: "requests",
      rowAttrs: (r) => ({ "data-request-id": r.request_id, "data-class": r.error_class || "ok" }) }));
    status.textContent = `${fmtInt(rows.length)} shown${page.length === PAGE_SIZE ? ", more below" : ""}`;
    more.hidden = page.length < PAGE_SIZE;
    more.onclick = () => load(query, rows[rows.length - 1].time).catch(showError);
    setReady();
  };
  await load(params);
}
