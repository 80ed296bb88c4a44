// infergate's ops console. It reads the JSON admin API and nothing else:
// GET /v2, /v2/repository/models, /v2/repository/audit and, for the
// selected model, .../routing, .../rollout, .../history and
// .../versions/{v}/drift; the split form PUTs .../routing, whose
// validation is the API's. It refreshes itself every few seconds
// (?refresh=SECONDS, default 2) without reloading the page.
"use strict";

const params = new URLSearchParams(location.search);
const refreshMs = Math.max(0.2, Number(params.get("refresh")) || 2) * 1000;
let selected = decodeURIComponent((location.hash.match(/model=([^&]+)/) || [])[1] || "");
let charts = {};
let firstRender = true;
let splitDirty = false; // the form holds an operator's edit: not overwritten by a refresh
let splitEdits = 0;     // edits so far: an apply clears splitDirty only if none came after it

// api calls the admin API on this origin. The browser sends the
// credentials it holds for it (Basic, the admin token as password, when
// the server asked for one); a token kept in this tab's sessionStorage
// under "infergate-token" goes as a bearer token.
async function api(path, opts = {}) {
  const headers = Object.assign({}, opts.headers || {});
  const token = sessionStorage.getItem("infergate-token");
  if (token) headers["Authorization"] = "Bearer " + token;
  const resp = await fetch(path, Object.assign({}, opts, { headers, credentials: "same-origin", cache: "no-store" }));
  const text = await resp.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (e) { body = { error: text }; }
  if (!resp.ok) {
    const err = new Error((body && body.error) || resp.statusText);
    err.status = resp.status;
    throw err;
  }
  return body;
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c == null ? "" : String(c)));
  return e;
}

function bytes(n) {
  if (!n) return "–";
  const u = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + " " + u[i];
}

function fmt(x, digits = 3) {
  return x == null || Number.isNaN(x) ? "–" : Number(x).toPrecision(digits);
}

function renderModels(models) {
  const body = document.querySelector("#models tbody");
  const rows = models.map(m => {
    const versions = el("td");
    for (const v of m.versions) {
      versions.append(el("span", { class: "state " + v.state, title: v.reason || v.state, "data-version": String(v.version) },
        `v${v.version} ${v.state} ${bytes(v.file_bytes)}`));
    }
    const labels = el("td");
    for (const [k, v] of Object.entries(m.labels || {}).sort()) labels.append(el("span", { class: "label", "data-label": k }, `${k} → v${v}`));
    const reasons = m.versions.filter(v => v.reason).map(v => `v${v.version}: ${v.reason}`);
    if (m.reason) reasons.unshift(m.reason);
    const tr = el("tr", { "data-model": m.name, class: m.name === selected ? "selected" : "" },
      el("td", {}, m.name), versions, labels, el("td", { class: "muted" }, reasons.join("; ")));
    tr.addEventListener("click", () => select(m.name));
    return tr;
  });
  body.replaceChildren(...rows);
  document.getElementById("model-count").textContent = `(${models.length})`;
}

function renderAudit(entries) {
  const rows = entries.slice().reverse().map(e => el("tr", { "data-action": e.action },
    el("td", {}, new Date(e.time).toLocaleString()), el("td", {}, e.actor), el("td", {}, e.action),
    el("td", {}, e.model || ""), el("td", {}, e.version || ""),
    el("td", { class: e.error ? "error" : "muted" }, e.error || e.reason || "")));
  document.querySelector("#audit tbody").replaceChildren(...rows);
}

function select(name) {
  selected = name;
  splitDirty = false;
  location.hash = "model=" + encodeURIComponent(name);
  for (const tr of document.querySelectorAll("#models tbody tr")) tr.classList.toggle("selected", tr.dataset.model === name);
  refreshDetail();
}

let currentDoc = null;
let currentModel = null;

function renderRouting(model, routing) {
  currentDoc = routing.routing || {};
  document.getElementById("routing-doc").textContent =
    `source: ${routing.source}${routing.persisted ? " (persisted)" : ""}\n` + JSON.stringify(routing.routing || {}, null, 2);
  // A running rollout owns the split: the form would end it.
  const apply = document.getElementById("split-apply");
  apply.disabled = !!currentDoc.rollout;
  apply.title = currentDoc.rollout ? "a rollout is running: abort or promote it first, or clear the document" : "";
  if (splitDirty) return;
  const byVersion = {}, byLabel = {};
  for (const t of currentDoc.split || []) {
    if (t.label) byLabel[t.label] = t.weight;
    else if (t.version) byVersion[t.version] = t.weight;
  }
  const row = (name, attr, value, weight) => el("tr", {}, el("td", {}, name),
    el("td", {}, el("input", { type: "number", step: "any", [attr]: value, value: weight ?? "" })));
  const rows = model.versions.map(v => row(`v${v.version} (${v.state})`, "data-version", String(v.version), byVersion[v.version]));
  const labels = new Set([...Object.keys(model.labels || {}), ...Object.keys(byLabel)]);
  for (const l of [...labels].sort()) rows.push(row(`label ${l}`, "data-label", l, byLabel[l]));
  document.querySelector("#split tbody").replaceChildren(...rows);
}

async function applySplit(ev) {
  ev.preventDefault();
  const edits = splitEdits;
  const split = [];
  for (const input of document.querySelectorAll("#split input")) {
    const w = input.value === "" ? 0 : Number(input.value);
    if (w === 0) continue;
    split.push(input.dataset.label ? { label: input.dataset.label, weight: w } : { version: Number(input.dataset.version), weight: w });
  }
  const doc = Object.assign({}, currentDoc || {});
  delete doc.status;
  doc.split = split;
  const out = document.getElementById("split-result");
  out.dataset.state = "pending";
  try {
    await api(`/v2/repository/models/${encodeURIComponent(selected)}/routing`, { method: "PUT", body: JSON.stringify(doc), headers: { "Content-Type": "application/json" } });
    out.className = "muted";
    out.textContent = "applied at " + new Date().toLocaleTimeString();
    out.dataset.state = "applied";
    if (splitEdits === edits) splitDirty = false;
  } catch (e) {
    out.className = "error";
    out.textContent = e.message;
    out.dataset.state = "error";
  }
  refreshDetail();
}

async function clearRouting() {
  const out = document.getElementById("split-result");
  try {
    await api(`/v2/repository/models/${encodeURIComponent(selected)}/routing`, { method: "DELETE" });
    out.className = "muted";
    out.textContent = "document cleared";
    splitDirty = false;
  } catch (e) {
    out.className = "error";
    out.textContent = e.message;
  }
  refreshDetail();
}

function target(t) {
  return t.label ? "label " + t.label : "v" + t.version;
}

function renderRollout(st) {
  const box = document.getElementById("rollout");
  if (!st) { box.replaceChildren("none"); box.className = "muted"; return; }
  box.className = "";
  const checks = el("table", {}, el("thead", {}, el("tr", {}, ...["check", "verdict", "value", "limit", "bounds", "reason"].map(h => el("th", {}, h)))));
  const last = st.last_interval || {};
  const cb = el("tbody");
  for (const c of last.checks || []) {
    cb.append(el("tr", {}, el("td", {}, c.name), el("td", { class: c.verdict }, c.verdict), el("td", {}, fmt(c.value)),
      el("td", {}, fmt(c.limit)), el("td", {}, `[${fmt(c.lower)}, ${fmt(c.upper)}]`), el("td", { class: "muted" }, c.reason)));
  }
  checks.append(cb);
  const hist = el("table", {}, el("thead", {}, el("tr", {}, ...["at", "step", "weight", "decision", "reason"].map(h => el("th", {}, h)))));
  const hb = el("tbody");
  for (const iv of (st.history || []).slice(-10).reverse()) {
    hb.append(el("tr", {}, el("td", {}, new Date(iv.at).toLocaleTimeString()), el("td", {}, iv.step), el("td", {}, iv.weight + "%"),
      el("td", {}, iv.decision), el("td", { class: "muted" }, iv.reason || "")));
  }
  hist.append(hb);
  box.replaceChildren(
    el("div", { "data-phase": st.phase }, `${st.phase}: step ${st.step}, canary ${st.weight}% (stable ${target(st.stable)}, canary ${target(st.canary)})`),
    st.reason ? el("div", { class: "muted" }, st.reason) : "",
    (st.skipped_checks || []).length ? el("div", { class: "muted" }, "skipped: " + st.skipped_checks.join("; ")) : "",
    el("h3", {}, "Last interval"), checks, el("h3", {}, "History"), hist);
}

// chart draws series (name → [[t...], [y...]] aligned on times) into a box.
function chart(id, title, times, series) {
  const box = document.getElementById(id);
  if (!times.length) {
    if (charts[id]) { charts[id].destroy(); delete charts[id]; }
    box.replaceChildren(el("span", { class: "muted" }, "no samples yet"));
    return;
  }
  const names = Object.keys(series);
  const data = [times, ...names.map(n => series[n])];
  const key = names.join("|");
  const width = Math.max(300, box.clientWidth || 600);
  if (charts[id] && charts[id].key === key) {
    charts[id].setData(data);
    return;
  }
  if (charts[id]) charts[id].destroy();
  box.replaceChildren();
  const palette = ["#3b6fd6", "#d64f3b", "#2a9d6a", "#b07b14", "#7b4bc4", "#c4418f"];
  const u = new uPlot({ width, height: 200, title, series: [{}, ...names.map((n, i) => ({ label: n, stroke: palette[i % palette.length], spanGaps: true }))], scales: { x: { time: true } } }, data, box);
  u.key = key;
  charts[id] = u;
}

// renderHistory charts the rate, the latency and the drift of every
// version, and returns the worst drifting tensor (version, kind/name).
function renderHistory(h) {
  const times = [...new Set(h.versions.flatMap(v => v.points.map(p => Date.parse(p.time) / 1000)))].sort((a, b) => a - b);
  const at = t => times.indexOf(t);
  const rate = {}, lat = {}, drift = {};
  let worst = null;
  for (const v of h.versions) {
    const r = new Array(times.length).fill(null), p50 = r.slice(), p99 = r.slice();
    for (const p of v.points) {
      const i = at(Date.parse(p.time) / 1000);
      r[i] = p.requests_per_second;
      p50[i] = p.p50_ms;
      p99[i] = p.p99_ms;
      for (const [t, psi] of Object.entries(p.drift || {})) {
        const k = `v${v.version} ${t}`;
        (drift[k] ||= new Array(times.length).fill(null))[i] = psi;
      }
    }
    rate[`v${v.version}`] = r;
    lat[`v${v.version} p50`] = p50;
    lat[`v${v.version} p99`] = p99;
    const lastPoint = v.points[v.points.length - 1];
    for (const [t, psi] of Object.entries((lastPoint && lastPoint.drift) || {})) {
      if (!worst || psi > worst.psi) worst = { version: v.version, tensor: t, psi };
    }
  }
  chart("chart-rate", "", times, rate);
  chart("chart-latency", "", times, lat);
  chart("chart-drift", "", Object.keys(drift).length ? times : [], drift);
  return worst;
}

async function renderDriftDetail(worst) {
  const box = document.getElementById("drift-detail");
  if (!worst) { box.replaceChildren("no drift monitoring on this model (monitoring.drift in its config.yaml)"); return; }
  const rep = await api(`/v2/repository/models/${encodeURIComponent(selected)}/versions/${worst.version}/drift`);
  const [kind, ...rest] = worst.tensor.split("/");
  const t = (rep.tensors || []).find(x => x.kind === kind && x.name === rest.join("/"));
  if (!t) { box.replaceChildren("no report yet for " + worst.tensor); return; }
  const table = el("table", {}, el("thead", {}, el("tr", {}, ...["element", "samples", "psi", "ks", "js", "p-value", "detected"].map(h => el("th", {}, h)))));
  const tb = el("tbody");
  for (const e of (t.elements || []).slice().sort((a, b) => b.psi - a.psi).slice(0, 16)) {
    tb.append(el("tr", {}, el("td", {}, e.index), el("td", {}, e.samples), el("td", {}, fmt(e.psi)), el("td", {}, fmt(e.ks)),
      el("td", {}, fmt(e.js)), el("td", {}, fmt(e.p_value)), el("td", { class: e.detected ? "fail" : "" }, e.detected ? "yes" : "no")));
  }
  table.append(tb);
  box.className = "";
  box.replaceChildren(el("h3", {}, `Worst tensor: v${worst.version} ${worst.tensor} (PSI ${fmt(worst.psi)}), its worst elements`), table);
}

async function refreshDetail() {
  const section = document.getElementById("detail");
  if (!selected) { section.hidden = true; return; }
  section.hidden = false;
  document.getElementById("detail-name").textContent = selected;
  const m = encodeURIComponent(selected);
  const [model, routing, rollout, history] = await Promise.all([
    api(`/v2/repository/models/${m}`),
    api(`/v2/repository/models/${m}/routing`),
    api(`/v2/repository/models/${m}/rollout`).catch(e => (e.status === 404 ? null : Promise.reject(e))),
    api(`/v2/repository/models/${m}/history`).catch(e => (e.status === 404 ? { versions: [] } : Promise.reject(e))),
  ]);
  currentModel = model;
  renderRouting(model, routing);
  renderRollout(rollout);
  await renderDriftDetail(renderHistory(history));
}

async function refresh() {
  const status = document.getElementById("status");
  try {
    // The selected model's detail loads beside the list, not after it.
    const detail = refreshDetail().catch(e => e);
    const [models, audit] = await Promise.all([api("/v2/repository/models"), api("/v2/repository/audit?limit=20")]);
    renderModels(models);
    renderAudit(audit);
    const err = await detail;
    if (selected && !models.some(m => m.name === selected)) {
      selected = "";
      document.getElementById("detail").hidden = true;
    } else if (err instanceof Error) {
      throw err;
    }
    status.className = "muted";
    status.textContent = "updated " + new Date().toLocaleTimeString();
    if (firstRender) {
      firstRender = false;
      // For tests and the curious: how long the first render took.
      document.body.dataset.renderedMs = String(Math.round(performance.now()));
      document.body.dataset.ready = "1";
    }
    document.body.dataset.refreshes = String(Number(document.body.dataset.refreshes || 0) + 1);
  } catch (e) {
    status.className = "error";
    status.textContent = (e.status === 401 || e.status === 403)
      ? "not authorized: open the console from this machine (loopback), through the admin listener, or with an admin token"
      : "refresh failed: " + e.message;
  }
}

document.getElementById("split-form").addEventListener("submit", applySplit);
document.getElementById("split-form").addEventListener("input", () => { splitDirty = true; splitEdits++; });
document.getElementById("routing-clear").addEventListener("click", clearRouting);
api("/v2").then(s => { document.getElementById("server").textContent = `${s.name} ${s.version}`; }).catch(() => {});
refresh();
setInterval(refresh, refreshMs);
