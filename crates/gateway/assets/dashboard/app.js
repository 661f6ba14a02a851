// Ekai Gateway dashboard: no framework, no build step. Talks only to /admin/stats/*, /admin/stream
// and /budget on the origin that served it.
"use strict";

const $ = (sel) => document.querySelector(sel);
const state = { tab: "overview", metric: "requests", overview: null, offset: 0, limit: 50, models: [] };
const API_PORT_HINT = location.port === "3000" ? "http://localhost:3001" : location.origin;

// ---------- formatting ----------
const nf = new Intl.NumberFormat("en-US");
function usd(v) {
  if (v === null || v === undefined) return "–";
  const n = Number(v);
  const digits = Math.abs(n) >= 1 ? 4 : 6;
  return "$" + n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}
const int = (v) => (v === null || v === undefined ? "–" : nf.format(v));
const pct = (v) => (v * 100).toFixed(v < 0.1 ? 2 : 1) + "%";
const ms = (v) => (v === null || v === undefined ? "–" : nf.format(Math.round(v)) + " ms");
function when(iso) {
  const d = new Date(iso);
  return d.toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit" });
}
function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
  }
  for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return e;
}
const svgEl = (tag, attrs) => {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
};

// ---------- API ----------
// Signed-in state lives in an httpOnly session cookie set by POST /admin/login: this script never
// holds the admin token after the sign-in request, and the cookie rides along with fetch and EventSource.
const session = { authRequired: false, signedIn: true, clients: false };
async function api(path, opts = {}) {
  const r = await fetch(path, Object.assign({ credentials: "same-origin" }, opts));
  if (r.status === 401) { needSignIn(); throw new Error("sign in with the admin token"); }
  if (r.status === 204) return null;
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error((body.error && body.error.message) || ("HTTP " + r.status));
  return body;
}
function needSignIn() {
  session.signedIn = false;
  $("#login").hidden = false;
  $("main").hidden = true;
  $("#logout").hidden = true;
  $("#token").focus();
}
async function loadSession() {
  const s = await fetch("/admin/session", { credentials: "same-origin" }).then((r) => r.json()).catch(() => ({}));
  session.authRequired = !!s.auth_required;
  session.signedIn = s.signed_in !== false;
  session.clients = !!s.clients;
  $("[data-tab=clients]").hidden = !session.clients;
  $("#logout").hidden = !(session.authRequired && session.signedIn);
}
$("#login").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("#login-error").textContent = "";
  const r = await fetch("/admin/login", { method: "POST", credentials: "same-origin", headers: { "content-type": "application/json" }, body: JSON.stringify({ token: $("#token").value.trim() }) });
  $("#token").value = "";
  if (!r.ok) {
    const b = await r.json().catch(() => ({}));
    $("#login-error").textContent = (b.error && b.error.message) || "sign-in failed (HTTP " + r.status + ")";
    return;
  }
  $("#login").hidden = true;
  $("main").hidden = false;
  await start();
});
$("#logout").addEventListener("click", async () => {
  await fetch("/admin/logout", { method: "POST", credentials: "same-origin" }).catch(() => {});
  if (source) { source.close(); source = null; }
  needSignIn();
});

// ---------- tabs ----------
document.querySelectorAll("nav [data-tab]").forEach((b) => b.addEventListener("click", () => show(b.dataset.tab)));
function show(tab) {
  state.tab = tab;
  document.querySelectorAll("nav [data-tab]").forEach((b) => b.setAttribute("aria-selected", String(b.dataset.tab === tab)));
  document.querySelectorAll("main > section").forEach((s) => (s.hidden = s.id !== "tab-" + tab));
  if (location.hash !== "#" + tab) history.replaceState(null, "", "#" + tab);
  refresh();
}
function refresh() {
  const t = state.tab;
  const loaders = { overview: loadOverview, requests: loadRequests, providers: loadProviders, models: loadModels, clients: loadClients };
  const p = loaders[t] ? loaders[t]() : Promise.resolve();
  p.catch((e) => showError(t, e));
}
function showError(tab, e) {
  if (tab === "overview") { $("#ov-status").textContent = "⚠ " + e.message; return; }
  const sec = $("#tab-" + tab);
  let m = sec.querySelector(".err-msg");
  if (!m) { m = el("p", { class: "err-msg muted", role: "alert" }); sec.prepend(m); }
  m.textContent = "⚠ " + e.message;
}

// ---------- overview ----------
function rangeQuery() {
  const r = $("#range").value;
  if (r !== "custom") return "range=" + r;
  const s = $("#start").value, e = $("#end").value;
  let q = "range=custom&startTime=" + encodeURIComponent(new Date(s).toISOString());
  if (e) q += "&endTime=" + encodeURIComponent(new Date(e).toISOString());
  return q;
}
$("#range").addEventListener("change", () => {
  const custom = $("#range").value === "custom";
  $("#custom-range").hidden = !custom;
  if (custom) {
    if (!$("#start").value) $("#start").value = new Date(Date.now() - 3 * 864e5 - new Date().getTimezoneOffset() * 6e4).toISOString().slice(0, 16);
    return;
  }
  loadOverview().catch((e) => showError("overview", e));
});
$("#apply-range").addEventListener("click", () => loadOverview().catch((e) => showError("overview", e)));
document.querySelectorAll("[data-metric]").forEach((b) => b.addEventListener("click", () => {
  state.metric = b.dataset.metric;
  document.querySelectorAll("[data-metric]").forEach((x) => x.setAttribute("aria-pressed", String(x === b)));
  if (state.overview) drawChart(state.overview);
}));

async function loadOverview() {
  const [ov, budget] = await Promise.all([api("/admin/stats/overview?" + rangeQuery()), api("/budget").catch(() => null)]);
  state.overview = ov;
  const t = ov.totals;
  $("#ov-status").textContent = "updated " + new Date().toLocaleTimeString();
  $("#k-requests").textContent = int(t.requests);
  $("#k-tokens").textContent = int(t.totalTokens);
  $("#k-cost").textContent = usd(t.cost);
  $("#k-burn").textContent = usd(ov.burnRatePerDay);
  $("#k-proj").textContent = "projected month " + usd(ov.projectedMonth);
  $("#k-err").textContent = t.requests ? pct(ov.errorRate) : "–";
  $("#k-lat").textContent = ov.latency.p50Ms === null ? "–" : ms(ov.latency.p50Ms) + " / " + ms(ov.latency.p95Ms);
  $("#k-lat-sub").textContent = ov.latency.sample ? "over " + int(ov.latency.sample) + " recent requests" : "";
  drawChart(ov);
  drawBars($("#by-provider"), ov.costByProvider);
  drawBars($("#by-model"), ov.costByModel);
  drawBudget(budget);
}

function emptyState(msg) {
  const d = el("div", { class: "empty" }, msg + " — point your client at ");
  d.append(el("code", {}, API_PORT_HINT), " (e.g. ", el("code", {}, "OPENAI_BASE_URL=" + API_PORT_HINT + "/v1"), ").");
  return d;
}

function drawChart(ov) {
  const box = $("#chart");
  box.replaceChildren();
  const metric = state.metric;
  const pts = ov.series.map((p) => ({ t: p.t, v: Number(p[metric]) || 0, errors: p.errors }));
  if (!ov.totals.requests) { box.append(emptyState("No requests in this range yet")); return; }
  // Drawn at the box's real width so labels keep their size on a phone.
  const W = Math.max(280, Math.round(box.clientWidth || 1000)), H = 240, L = 64, R = 12, T = 12, B = 28;
  const max = Math.max(...pts.map((p) => p.v), metric === "cost" ? 1e-6 : 1);
  const step = niceStep(max / 4, metric !== "cost"), top = step * Math.ceil(max / step);
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none" });
  const fmt = metric === "cost" ? usd : int;
  for (let v = 0; v <= top + step / 2; v += step) {
    const y = T + (H - T - B) * (1 - v / top);
    svg.append(svgEl("line", { x1: L, x2: W - R, y1: y, y2: y, class: "axis" }));
    const lbl = svgEl("text", { x: L - 6, y: y + 4, "text-anchor": "end" });
    lbl.textContent = metric === "cost" ? "$" + Number(v.toPrecision(3)) : nf.format(Math.round(v));
    svg.append(lbl);
  }
  const n = pts.length, slot = (W - L - R) / Math.max(n, 1), bw = Math.max(1, slot * 0.75);
  const labelEvery = Math.ceil(n / Math.max(2, Math.floor((W - L) / 90)));
  pts.forEach((p, i) => {
    const h = (H - T - B) * (p.v / top);
    const x = L + i * slot + (slot - bw) / 2;
    const r = svgEl("rect", { x, y: H - B - h, width: bw, height: Math.max(h, p.v > 0 ? 1 : 0), class: "bar" });
    const tip = svgEl("title", {});
    tip.textContent = when(p.t) + ": " + fmt(p.v) + (p.errors ? ` (${p.errors} errors)` : "");
    r.append(tip);
    svg.append(r);
    if (i % labelEvery === 0) {
      const d = new Date(p.t);
      const lbl = svgEl("text", { x: L + i * slot + slot / 2, y: H - 8, "text-anchor": "middle" });
      lbl.textContent = ov.bucket === "day" ? d.toLocaleDateString(undefined, { month: "short", day: "numeric" }) : d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
      svg.append(lbl);
    }
  });
  box.append(svg);
}

// A round axis step (1, 2 or 5 × 10^n) near `raw`; whole numbers for counts.
function niceStep(raw, whole) {
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const n = raw / mag;
  const step = (n <= 1 ? 1 : n <= 2 ? 2 : n <= 5 ? 5 : 10) * mag;
  return whole ? Math.max(1, Math.round(step)) : step;
}

let resizeTimer = null;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => { if (state.overview && state.tab === "overview") drawChart(state.overview); }, 150);
});

function drawBars(box, rows) {
  box.replaceChildren();
  if (!rows.length) { box.append(el("div", { class: "empty" }, "No spend in this range.")); return; }
  const max = Math.max(...rows.map((r) => Number(r.cost)), 1e-12);
  for (const r of rows.slice(0, 8)) {
    const fill = el("div", { class: "fill" });
    fill.style.width = Math.max(1, (100 * Number(r.cost)) / max) + "%";
    box.append(el("div", { class: "row", title: `${r.name}: ${int(r.requests)} requests, ${int(r.totalTokens)} tokens` },
      el("span", { class: "name" }, r.name || "(unknown)"), el("div", { class: "track" }, fill), el("span", { class: "amt" }, r.unpriced === r.requests && !Number(r.cost) ? "unpriced" : usd(r.cost))));
  }
}

function drawBudget(b) {
  const v = $("#budget-view");
  v.replaceChildren();
  if (!b) { v.append(el("div", { class: "empty" }, "Budget unavailable (ledger disabled).")); return; }
  const spent = Number(b.spentMonthToDate);
  if (b.amountUsd === null) {
    v.append(el("div", {}, "No monthly cap. Spent this month: ", el("strong", {}, usd(spent))));
    return;
  }
  const cap = Number(b.amountUsd);
  const meter = el("div", { class: "meter", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": String(cap), "aria-valuenow": String(spent), "aria-label": "Budget used" });
  const fill = el("div", { class: spent >= cap ? "over" : "" });
  fill.style.width = Math.min(100, cap ? (100 * spent) / cap : 100) + "%";
  meter.append(fill);
  v.append(el("div", {}, el("strong", {}, usd(spent)), " of ", usd(cap), b.alertOnly ? " (alert only)" : ""), meter,
    el("div", { class: "muted" }, "remaining " + usd(b.remaining)));
  $("#budget-amount").value = cap;
  $("#budget-alert").checked = !!b.alertOnly;
}
async function putBudget(amount, alertOnly) {
  const b = await api("/budget", { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify({ amountUsd: amount, alertOnly }) });
  drawBudget(b);
}
$("#budget-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const raw = $("#budget-amount").value;
  if (raw === "") return;
  putBudget(Number(raw), $("#budget-alert").checked).catch((err) => showError("overview", err));
});
$("#budget-clear").addEventListener("click", () => {
  $("#budget-amount").value = "";
  putBudget(null, false).catch((err) => showError("overview", err));
});

// ---------- requests ----------
function reqQuery() {
  const q = new URLSearchParams({ limit: String(state.limit), offset: String(state.offset) });
  const p = $("#f-provider").value.trim(), m = $("#f-model").value.trim(), s = $("#f-status").value;
  if (p) q.set("provider", p);
  if (m) q.set("model", m);
  if (s) q.set("status", s);
  return q;
}
function statusPill(r) {
  const bad = r.status >= 400 || r.error_kind;
  return el("span", { class: "pill" + (bad ? " bad" : "") }, r.status + (r.error_kind ? " " + r.error_kind : ""));
}
// x402 rows show what was actually paid, on which network; the tx hash is in the title and the detail.
function payment(r) {
  if (!r.x402) return r.payment_method;
  const p = r.x402;
  return el("span", { title: (p.tx_hash ? "tx " + p.tx_hash + "\n" : "") + "to " + p.payee + "\nasset " + p.asset },
    `x402 ${usd(p.amount_usd)} (${p.network})`);
}
function requestRow(r, full) {
  const cells = full
    ? [when(r.timestamp), r.client_key_id || "–", r.requested_model === r.model ? r.model : `${r.requested_model} → ${r.model}`, r.provider,
       r.attempt > 1 ? "#" + r.attempt + " (fallback)" : "#" + r.attempt, null, null, null, null, payment(r)]
    : [when(r.timestamp), r.model, r.provider, null, null, null, null];
  const tr = el("tr", { tabindex: "0" });
  const nums = { tokens: int(r.total_tokens), cost: r.priced ? usd(r.total_cost) : "unpriced", lat: ms(r.total_ms) };
  const order = full ? ["", "", "", "", "", "status", "tokens", "cost", "lat", ""] : ["", "", "", "status", "tokens", "cost", "lat"];
  order.forEach((k, i) => {
    if (k === "status") tr.append(el("td", {}, statusPill(r)));
    else if (k) tr.append(el("td", { class: "num" }, nums[k]));
    else tr.append(el("td", {}, cells[i]));
  });
  const open = () => { $("#detail-body").textContent = JSON.stringify(r, null, 2); $("#detail").showModal(); };
  tr.addEventListener("click", open);
  tr.addEventListener("keydown", (e) => { if (e.key === "Enter") open(); });
  return tr;
}
async function loadRequests() {
  const q = reqQuery();
  const csv = new URLSearchParams(q); csv.set("format", "csv"); csv.set("limit", "1000"); csv.set("offset", "0");
  $("#csv-link").href = "/admin/stats/requests?" + csv;
  const data = await api("/admin/stats/requests?" + q);
  const body = $("#req-table tbody");
  body.replaceChildren();
  if (!data.records.length) {
    const td = el("td", { colspan: "10" }); td.append(emptyState(state.offset ? "No more requests" : "No requests yet"));
    body.append(el("tr", {}, td));
  }
  for (const r of data.records) body.append(requestRow(r, true));
  $("#page-info").textContent = data.records.length ? `${state.offset + 1}–${state.offset + data.records.length}` : "";
  $("#prev").disabled = state.offset === 0;
  $("#next").disabled = data.records.length < state.limit;
}
$("#req-filters").addEventListener("submit", (e) => { e.preventDefault(); state.offset = 0; loadRequests().catch((x) => showError("requests", x)); });
$("#prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - state.limit); loadRequests().catch((x) => showError("requests", x)); });
$("#next").addEventListener("click", () => { state.offset += state.limit; loadRequests().catch((x) => showError("requests", x)); });

// ---------- providers ----------
async function loadProviders() {
  const { providers } = await api("/admin/stats/providers");
  const box = $("#providers");
  box.replaceChildren();
  if (!providers.length) { box.append(el("div", { class: "card empty" }, "No provider is configured: set OPENAI_API_KEY, ANTHROPIC_API_KEY, GOOGLE_API_KEY, XAI_API_KEY or OPENROUTER_API_KEY and restart.")); return; }
  for (const p of providers) {
    const cls = p.circuit === "closed" ? "pill" : p.circuit === "open" ? "pill bad" : "pill warn";
    const dl = el("dl", { class: "kv" },
      el("dt", {}, "circuit"), el("dd", {}, el("span", { class: cls }, p.circuit)),
      el("dt", {}, "latency (EWMA)"), el("dd", {}, ms(p.latencyMs)),
      el("dt", {}, "error rate"), el("dd", {}, p.recentRequests ? pct(p.errorRate) : "–"),
      el("dt", {}, "recent requests"), el("dd", {}, int(p.recentRequests)),
      el("dt", {}, "dialect"), el("dd", {}, p.dialect));
    box.append(el("div", { class: "card" }, el("h2", {}, p.name), dl,
      el("div", { class: "models" }, p.models.length ? `${p.models.length} models: ${p.models.join(", ")}` : "no catalog models (any model name is passed through)")));
  }
}

// ---------- models ----------
async function loadModels() {
  if (!state.models.length) state.models = (await api("/admin/stats/models")).models;
  drawModels();
}
function drawModels() {
  const f = $("#m-filter").value.trim().toLowerCase(), only = $("#m-configured").checked;
  const body = $("#models-table tbody");
  body.replaceChildren();
  const price = (v) => (v === null || v === undefined ? "–" : "$" + v);
  const rows = state.models.filter((m) => (!only || m.configured) && (!f || m.id.toLowerCase().includes(f) || m.provider.includes(f)));
  if (!rows.length) body.append(el("tr", {}, el("td", { colspan: "7", class: "empty" }, only ? "No models for the configured providers (untick the box to see the whole catalog)." : "No model matches.")));
  for (const m of rows) {
    const p = m.price || {};
    body.append(el("tr", {}, el("td", {}, m.id), el("td", {}, m.provider),
      el("td", { class: "num" }, m.price ? price(p.input) : "unpriced"), el("td", { class: "num" }, m.price ? price(p.output) : "–"),
      el("td", { class: "num" }, price(p.cacheRead)), el("td", { class: "num" }, price(p.cacheWrite)),
      el("td", { class: "num" }, m.contextWindow ? int(m.contextWindow) : "–")));
  }
}
$("#m-filter").addEventListener("input", drawModels);
$("#m-configured").addEventListener("change", drawModels);

// ---------- live ----------
let source = null, retry = 1000;
function connectLive() {
  if (source) source.close();
  source = new EventSource("/admin/stream");
  source.addEventListener("hello", () => {
    retry = 1000;
    $("#live-dot").classList.add("on"); $("#live-dot").title = "connected";
    $("#live-status").textContent = "connected — new requests appear here as they finish";
  });
  source.addEventListener("usage", (e) => {
    const r = JSON.parse(e.data);
    const tr = requestRow(r, false);
    tr.classList.add("flash");
    const body = $("#live-table tbody");
    body.prepend(tr);
    while (body.children.length > 200) body.lastChild.remove();
    if (state.tab === "overview") scheduleOverview();
  });
  source.addEventListener("lagged", (e) => { $("#live-status").textContent = "fell behind: skipped " + JSON.parse(e.data).skipped + " records"; });
  source.onerror = () => {
    $("#live-dot").classList.remove("on"); $("#live-dot").title = "disconnected";
    $("#live-status").textContent = "disconnected — reconnecting…";
    // EventSource retries by itself on network errors; after an HTTP error it gives up, so retry here.
    if (source.readyState === EventSource.CLOSED && session.signedIn) { setTimeout(connectLive, retry); retry = Math.min(retry * 2, 30000); }
  };
}
let ovTimer = null;
function scheduleOverview() {
  if (ovTimer) return;
  ovTimer = setTimeout(() => { ovTimer = null; loadOverview().catch(() => {}); }, 1500);
}

// ---------- clients ----------
function limitsText(l) {
  const parts = [];
  const names = { requests_per_minute: "req/min", requests_per_hour: "req/h", requests_per_day: "req/day", tokens_per_minute: "tok/min", tokens_per_day: "tok/day" };
  for (const [k, label] of Object.entries(names)) if (l && l[k]) parts.push(int(l[k]) + " " + label);
  return parts.length ? parts.join(", ") : "none";
}
async function loadClients() {
  const { data } = await api("/admin/clients");
  const body = $("#clients-table tbody");
  body.replaceChildren();
  if (!data.length) body.append(el("tr", {}, el("td", { colspan: "9", class: "empty" }, "No clients yet — create one above and give its key to the app or person that will use the gateway.")));
  for (const c of data) {
    const cls = c.status === "active" ? "pill" : "pill bad";
    const action = c.status === "active"
      ? el("button", { type: "button", class: "danger", "aria-label": "Revoke " + c.name, onclick: () => revokeClient(c) }, "Revoke")
      : "";
    body.append(el("tr", { "data-client": c.id },
      el("td", {}, c.name), el("td", {}, el("code", {}, c.key_prefix + "…")), el("td", {}, el("span", { class: cls }, c.status)),
      el("td", {}, c.model_preferences && c.model_preferences.length ? c.model_preferences.join(", ") : "any"),
      el("td", {}, limitsText(c.limits)),
      el("td", { class: "num" }, c.budget_usd === null || c.budget_usd === undefined ? "–" : usd(c.budget_usd)),
      el("td", { class: "num" }, usd(c.spent_month_to_date_usd || 0)),
      el("td", {}, when(c.created_at)), el("td", {}, action)));
  }
}
async function revokeClient(c) {
  if (!confirm(`Revoke ${c.name}? Its key stops working at once.`)) return;
  await api("/admin/clients/" + encodeURIComponent(c.id), { method: "DELETE" }).catch((e) => showError("clients", e));
  loadClients().catch((e) => showError("clients", e));
}
$("#client-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const body = { name: $("#c-name").value.trim() };
  const models = $("#c-models").value.split(",").map((m) => m.trim()).filter(Boolean);
  if (models.length) body.model_preferences = models;
  const limits = {};
  if ($("#c-rpm").value) limits.requests_per_minute = Number($("#c-rpm").value);
  if ($("#c-tpd").value) limits.tokens_per_day = Number($("#c-tpd").value);
  if (Object.keys(limits).length) body.limits = limits;
  if ($("#c-budget").value !== "") body.budget_usd = Number($("#c-budget").value);
  try {
    const c = await api("/admin/clients", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    $("#new-key-name").textContent = c.name;
    $("#new-key-value").textContent = c.key;
    $("#new-key").hidden = false;
    $("#client-form").reset();
    await loadClients();
  } catch (err) { showError("clients", err); }
});

// ---------- start ----------
async function start() {
  await loadSession();
  if (session.authRequired && !session.signedIn) { needSignIn(); return; }
  const initial = (location.hash || "#overview").slice(1);
  const tabs = ["overview", "requests", "providers", "models", "live"].concat(session.clients ? ["clients"] : []);
  show(tabs.includes(initial) ? initial : "overview");
  connectLive();
}
start();
setInterval(() => { if (session.signedIn && (state.tab === "overview" || state.tab === "providers")) refresh(); }, 30000);
