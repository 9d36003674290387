// The Keys page: per key, its use in the range, when it was last used, what litegate's policy refused, how
// close it is to each limit and budget; a form that makes a key (its secret shown once, in this page only)
// and a revoke button per key. Both POST to the admin API with the session's CSRF token; admin only.
import {
  api, badge, card, currentRange, fmtAgo, fmtCost, fmtInt, fmtMs, h, main, meter, plural, rangeControl, setReady,
  showError, tile,
} from "./ui.js";

const UNAUTHENTICATED = "unauthenticated"; // the usage name of requests with a missing or wrong key

function limitRow(label, used, limit, format = fmtInt, always = false) {
  if (!limit && !always) return null;
  return h("div", { class: "share-row", "data-limit": label },
    h("span", { class: "name small", text: label }),
    limit ? meter(used, limit) : h("span", { class: "muted small", text: "no limit" }),
    h("span", { class: "num small", text: limit ? `${format(used)} / ${format(limit)} · ${format(Math.max(0, limit - used))} left` : format(used) }));
}

// The limit the key is closest to, as [fraction, label]; null when it has none.
export function closest(lim) {
  const pairs = [["Requests / min", lim.requests_last_minute, lim.rpm], ["Tokens / min", lim.tokens_last_minute, lim.tpm],
    ["Concurrent", lim.concurrent, lim.max_concurrent], ["Tokens today", lim.tokens_today, lim.tokens_per_day],
    ["Tokens this month", lim.tokens_this_month, lim.tokens_per_month], ["Cost this month", lim.cost_this_month, lim.cost_per_month],
    ["Searches today", lim.searches_today, lim.searches_per_day]].filter(([, , limit]) => limit);
  if (!pairs.length) return null;
  return pairs.map(([label, used, limit]) => [used / limit, label]).sort((a, b) => b[0] - a[0])[0];
}

function closenessBadge(lim) {
  const c = lim && closest(lim);
  if (!c) return badge("idle", "no limits");
  const [frac, label] = c;
  const pct = `${Math.round(frac * 100)}% of ${label.toLowerCase()}`;
  return frac >= 1 ? badge("bad", `at limit: ${label.toLowerCase()}`) : frac >= 0.8 ? badge("warn", pct) : badge("ok", pct);
}

function revokeButton(name, onDone) {
  const button = h("button", { type: "button", class: "danger small", "data-revoke": name, text: "Revoke" });
  let armed = null;
  button.addEventListener("click", async () => {
    if (!armed) { // two steps instead of a dialog: a phone tap cannot revoke by accident
      button.textContent = "Tap again to revoke";
      button.dataset.armed = "1";
      armed = setTimeout(() => { armed = null; button.textContent = "Revoke"; delete button.dataset.armed; }, 5000);
      return;
    }
    clearTimeout(armed);
    button.disabled = true;
    try {
      await api(`/admin/keys/${encodeURIComponent(name)}/revoke`, { method: "POST" });
      await onDone();
    } catch (e) {
      showError(e);
      button.disabled = false;
    }
  });
  return button;
}

function keyCard(name, lim, use, info, onChange) {
  const u = use || { requests: 0, errors: 0, prompt_tokens: 0, completion_tokens: 0, cost: 0, latency_p50_ms: null };
  const facts = info ? [`last used ${info.last_used ? fmtAgo(info.last_used) : "never"}`,
    `${fmtInt(info.refused)} refused by policy in 24 h`, info.source === "runtime" ? "made in the dashboard" : "from the config file"]
    : ["not in the config any more"];
  return h("section", { class: "card", "data-key": name },
    h("div", { class: "card-head" }, h("h2", { text: name }),
      h("span", { class: "chips" }, lim?.admin ? badge("idle", "admin") : null,
        lim?.revoked ? badge("bad", "revoked") : lim ? closenessBadge(lim) : null,
        lim && !lim.revoked ? revokeButton(name, onChange) : null)),
    h("p", { class: "muted small", "data-field": "facts", text: facts.join(" · ") }),
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

function newKeyForm(onMade, firstKey) {
  const result = h("div", { id: "new-key-result" });
  const form = h("form", { class: "form-row", id: "new-key" },
    h("label", {}, "Name", h("input", { name: "name", required: true, autocomplete: "off", spellcheck: "false",
      placeholder: "friend-laptop" })),
    h("label", {}, "Models (comma-separated)", h("input", { name: "models", autocomplete: "off", spellcheck: "false",
      placeholder: "all" })),
    h("label", {}, "Requests / min", h("input", { name: "rpm", inputmode: "numeric", autocomplete: "off", placeholder: "no limit" })),
    h("label", { class: "check" }, h("input", { type: "checkbox", name: "admin", checked: firstKey }), "admin"),
    h("button", { type: "submit", class: "primary", text: "Make key" }));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const data = new FormData(form);
    const body = { name: String(data.get("name")).trim(), admin: data.get("admin") === "on",
      models: String(data.get("models") || "").split(",").map((m) => m.trim()).filter(Boolean) };
    if (String(data.get("rpm") || "").trim()) body.rpm = Number(data.get("rpm"));
    try {
      const made = await api("/admin/keys", { method: "POST", body: JSON.stringify(body),
        headers: { "content-type": "application/json" } });
      form.reset();
      result.replaceChildren(h("div", { class: "notice ok", role: "status" },
        h("b", { text: `Key for ${made.name}` }), " — copy it now, it is shown this once (litegate keeps only a hash):",
        h("code", { class: "secret", id: "new-key-secret", text: made.key })));
      await onMade();
    } catch (e) {
      result.replaceChildren(h("p", { class: "notice", role: "alert", text: e.message }));
    }
  });
  return h("section", { class: "card", id: "new-key-card" },
    h("div", { class: "card-head" }, h("h2", { text: "Make a key" })), form, result,
    h("p", { class: "muted small", text: firstKey
      ? "This is the first key: from now on every request needs one, so it must be an admin key."
      : "Stored hashed beside the usage database (keys.json); it survives restarts and reloads." }));
}

export async function keysPage() {
  const box = h("div", { id: "keys" });
  const strangers = h("p", { class: "small", id: "unauthenticated" });
  const render = async () => {
    const range = currentRange("7d");
    document.querySelectorAll("[data-range]").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.range === range.id)));
    const [limits, usage, keys] = await Promise.all([api("/admin/limits"),
      api(`/admin/usage?since=${range.id}&group_by=key`), api("/admin/keys")]);
    const use = new Map(usage.rows.map((r) => [r.group, r]));
    const lims = new Map(limits.keys.map((k) => [k.name, k]));
    const infos = new Map(keys.keys.map((k) => [k.name, k]));
    const names = [...new Set([...lims.keys(), ...use.keys()])].filter((n) => n !== UNAUTHENTICATED && n !== "anonymous")
      .sort((a, b) => (use.get(b)?.requests || 0) - (use.get(a)?.requests || 0) || String(a).localeCompare(String(b)));
    const bad = use.get(UNAUTHENTICATED);
    strangers.textContent = bad ? `${plural(bad.requests, "request")} came with a missing or wrong key in this range `
      + `(last ${fmtAgo(keys.unauthenticated.last_at)}).` : "No request came with a missing or wrong key in this range.";
    box.replaceChildren(names.length
      ? h("div", { class: "grid two" }, names.map((n) => keyCard(n, lims.get(n), use.get(n), infos.get(n), render)))
      : card("Keys", h("p", { class: "empty", text: "No keys yet: every request is let in (loopback only)." })));
    if (!formSlot.firstChild) formSlot.append(newKeyForm(render, !limits.keys.length)); // kept: it shows the new secret
    setReady();
  };
  const formSlot = h("div");
  main.replaceChildren(h("div", { class: "bar" }, h("h2", { text: "Keys" }), h("span", { class: "spacer" }),
    rangeControl(currentRange("7d"), () => render().catch(showError))), strangers, box, formSlot);
  await render();
}
