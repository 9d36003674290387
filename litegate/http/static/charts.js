// Hand-written SVG charts for the dashboard: no library, no inline styles (colours come from CSS classes).
const SVG = "http://www.w3.org/2000/svg";
export const MAX_SERIES = 7; // more than this and the rest are summed as "other"
const OTHER = 7; // colour class of "other" (grey); series get colours 0..6

// One colour per name on every chart and every page: a model keeps the colour of its place in the
// config's model list (setNameOrder), anything else (a key, a route) a colour from a hash of its name.
let order = new Map();
export function setNameOrder(names) {
  order = new Map([...new Set(names)].map((n, i) => [n, i]));
}
// Error classes and the latency lines keep one colour everywhere too.
const FIXED = { backend: 4, policy: 6, client: 3, "latency p50": 0, "latency p95": 1, "first token p95": 2 };
export function colourOf(name) {
  if (name === "other") return OTHER;
  if (name in FIXED) return FIXED[name];
  if (order.has(name)) return order.get(name) % OTHER;
  let hash = 0;
  for (const ch of String(name)) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return hash % OTHER;
}

function svg(tag, attrs = {}, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 4, 6, 8, 10]) if (m * p >= v) return m * p; // even steps: the middle line is exact
  return 10 * p;
}

function bucketLabel(t, bucketS, spanS) {
  const d = new Date(t * 1000);
  if (bucketS >= 86400 || spanS > 3 * 86400) {
    const day = d.toLocaleDateString(undefined, { month: "short", day: "numeric" });
    return bucketS >= 86400 ? day : `${day} ${String(d.getHours()).padStart(2, "0")}h`;
  }
  return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
}

// A point's series: "all" when the chart is not split, "(none)" for rows without one (a request refused
// before its body was read has no model).
function seriesName(p) {
  return p.series === null || p.series === undefined ? "all" : p.series === "" ? "(none)" : p.series;
}

// Points (one per bucket and series, empty buckets absent) -> every bucket from since to now, and
// the series ranked by their total, the smallest folded into "other".
export function arrange(points, { since, now, bucketS, value }) {
  const first = Math.floor(since / bucketS) * bucketS;
  const last = Math.floor(now / bucketS) * bucketS;
  const buckets = [];
  for (let t = first; t <= last; t += bucketS) buckets.push(t);
  const totals = new Map();
  for (const p of points) {
    const name = seriesName(p);
    totals.set(name, (totals.get(name) || 0) + value(p));
  }
  let names = [...totals.keys()].filter((n) => totals.get(n) > 0).sort((a, b) => totals.get(b) - totals.get(a) || String(a).localeCompare(String(b)));
  const folded = names.length > MAX_SERIES + 1 ? new Set(names.slice(MAX_SERIES)) : new Set();
  if (folded.size) names = [...names.slice(0, MAX_SERIES), "other"];
  const index = new Map(buckets.map((t, i) => [t, i]));
  const cells = names.map(() => buckets.map(() => 0));
  for (const p of points) {
    const i = index.get(p.t);
    if (i === undefined) continue;
    const name = folded.has(seriesName(p)) ? "other" : seriesName(p);
    const s = names.indexOf(name);
    if (s >= 0) cells[s][i] += value(p);
  }
  const seriesTotals = cells.map((row) => row.reduce((a, b) => a + b, 0));
  return { buckets, names, cells, seriesTotals };
}

// A stacked bar chart of `data` (from arrange) into `box`; `readout` shows the bucket under the finger.
export function stackedBars(box, data, { bucketS, spanS, format, readout }) {
  box.replaceChildren();
  const width = Math.max(260, Math.round(box.clientWidth || 600));
  const height = width < 500 ? 170 : 210;
  const m = { l: 46, r: 6, t: 8, b: 22 };
  const pw = width - m.l - m.r, ph = height - m.t - m.b;
  const stackTotals = data.buckets.map((_, i) => data.cells.reduce((a, row) => a + row[i], 0));
  const top = niceMax(Math.max(0, ...stackTotals));
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img" });
  for (const f of [0, 0.5, 1]) {
    const y = m.t + ph - f * ph;
    root.append(svg("line", { x1: m.l, x2: width - m.r, y1: y, y2: y, class: "grid-line" }));
    if (f === 0.5 && format(top * f) === format(top)) continue; // "1, 1, 0" says nothing
    root.append(svg("text", { x: m.l - 6, y: y + 4, "text-anchor": "end", class: "axis" }, format(top * f)));
  }
  const n = data.buckets.length || 1;
  const slot = pw / n;
  const bw = Math.max(1, slot * (n > 60 ? 0.9 : 0.75));
  const every = Math.max(1, Math.ceil(n / Math.max(2, Math.floor(pw / 70))));
  data.buckets.forEach((t, i) => {
    const x = m.l + i * slot + (slot - bw) / 2;
    let y = m.t + ph;
    data.names.forEach((name, s) => {
      const v = data.cells[s][i];
      if (!v) return;
      const h = (v / top) * ph;
      y -= h;
      const rect = svg("rect", { x, y, width: bw, height: Math.max(h, 0.5), class: `s${colourOf(name)}` });
      rect.append(svg("title", {}, `${bucketLabel(t, bucketS, spanS)} · ${name}: ${format(v)}`));
      root.append(rect);
    });
    if (i % every === 0) {
      root.append(svg("text", { x: m.l + i * slot + slot / 2, y: height - 6, "text-anchor": "middle", class: "axis" },
        bucketLabel(t, bucketS, spanS)));
    }
    const hit = svg("rect", { x: m.l + i * slot, y: m.t, width: slot, height: ph, fill: "transparent" });
    const show = () => {
      const parts = data.names.map((name, s) => [name, data.cells[s][i]]).filter(([, v]) => v);
      readout.textContent = `${bucketLabel(t, bucketS, spanS)}: ` +
        (parts.length ? parts.map(([name, v]) => `${name} ${format(v)}`).join(", ") : "nothing");
    };
    hit.addEventListener("pointerenter", show);
    hit.addEventListener("click", show);
    root.append(hit);
  });
  box.append(root);
}

export function legend(data, format) {
  const el = document.createElement("div");
  el.className = "legend";
  data.names.forEach((name, s) => {
    const item = document.createElement("span");
    const sw = document.createElement("i");
    sw.className = `swatch s${colourOf(name)}`;
    item.append(sw, `${name} `);
    const total = document.createElement("b");
    total.textContent = format(data.seriesTotals[s]);
    item.append(total);
    el.append(item);
  });
  return el;
}

// Lines over the same buckets (null = no data in that bucket, a gap): p50/p95 latency and time to first
// token. `series` is [{name, values}]; colours are the names' own.
export function lineChart(box, buckets, series, { bucketS, spanS, format, readout }) {
  box.replaceChildren();
  const width = Math.max(260, Math.round(box.clientWidth || 600));
  const height = width < 500 ? 170 : 210;
  const m = { l: 52, r: 6, t: 8, b: 22 };
  const pw = width - m.l - m.r, ph = height - m.t - m.b;
  const top = niceMax(Math.max(0, ...series.flatMap((s) => s.values.filter((v) => v !== null))));
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img" });
  for (const f of [0, 0.5, 1]) {
    const y = m.t + ph - f * ph;
    root.append(svg("line", { x1: m.l, x2: width - m.r, y1: y, y2: y, class: "grid-line" }));
    if (f === 0.5 && format(top * f) === format(top)) continue; // "1, 1, 0" says nothing
    root.append(svg("text", { x: m.l - 6, y: y + 4, "text-anchor": "end", class: "axis" }, format(top * f)));
  }
  const n = buckets.length || 1;
  const slot = pw / n;
  const x = (i) => m.l + i * slot + slot / 2;
  const y = (v) => m.t + ph - (v / top) * ph;
  for (const s of series) {
    let path = "";
    s.values.forEach((v, i) => {
      if (v === null) return;
      path += `${path && s.values[i - 1] !== null ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
    });
    if (path) root.append(svg("path", { d: path, class: `line s${colourOf(s.name)}` }));
    s.values.forEach((v, i) => {
      if (v !== null) root.append(svg("circle", { cx: x(i), cy: y(v), r: 2.2, class: `s${colourOf(s.name)}` }));
    });
  }
  const every = Math.max(1, Math.ceil(n / Math.max(2, Math.floor(pw / 70))));
  buckets.forEach((t, i) => {
    if (i % every === 0) {
      root.append(svg("text", { x: x(i), y: height - 6, "text-anchor": "middle", class: "axis" },
        bucketLabel(t, bucketS, spanS)));
    }
    const hit = svg("rect", { x: m.l + i * slot, y: m.t, width: slot, height: ph, fill: "transparent" });
    const show = () => {
      const parts = series.filter((s) => s.values[i] !== null).map((s) => `${s.name} ${format(s.values[i])}`);
      readout.textContent = `${bucketLabel(t, bucketS, spanS)}: ${parts.length ? parts.join(", ") : "no requests"}`;
    };
    hit.addEventListener("pointerenter", show);
    hit.addEventListener("click", show);
    root.append(hit);
  });
  box.append(root);
}

// Every bucket start from since to now (for charts whose points are per bucket).
export function bucketsOf(since, now, bucketS) {
  const out = [];
  for (let t = Math.floor(since / bucketS) * bucketS; t <= Math.floor(now / bucketS) * bucketS; t += bucketS) out.push(t);
  return out;
}

export function lineLegend(series) {
  const el = document.createElement("div");
  el.className = "legend";
  for (const s of series) {
    const item = document.createElement("span");
    const sw = document.createElement("i");
    sw.className = `swatch s${colourOf(s.name)}`;
    item.append(sw, s.name);
    el.append(item);
  }
  return el;
}
