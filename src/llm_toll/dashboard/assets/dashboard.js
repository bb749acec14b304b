// The llm-toll dashboard: reads /api/overview, /api/calls and /api/runs, draws the figures,
// and polls for calls recorded after the newest one shown (and for runs and refusals). Money arrives as strings of integer
// nano-USD and is formatted here with BigInt, so no figure goes through a float.
"use strict";

const POLL_MS = 2000;
const SHOWN_CALLS = 50;
const SHOWN_RUNS = 20;
const NANOS_PER_USD = 1000000000n;
const SVG = "http://www.w3.org/2000/svg";

const state = { lastId: null, polling: null, generation: 0 };

// -- money and numbers -------------------------------------------------------------------

// Cents from $1, four decimals from one cent, every digit below: never "$0.0000" for a
// non-zero amount.
function usd(nanosText) {
  let nanos = BigInt(nanosText);
  const sign = nanos < 0n ? "-" : "";
  if (nanos < 0n) nanos = -nanos;
  if (nanos === 0n) return "$0.00";
  let places;
  if (nanos >= NANOS_PER_USD) places = 2;
  else if (nanos >= 10000000n) places = 4;
  else places = 9;
  const unit = 10n ** BigInt(9 - places);
  const rounded = (nanos + unit / 2n) / unit; // half up, in units of the last place shown
  const scale = 10n ** BigInt(places);
  const whole = (rounded / scale).toLocaleString("en-US");
  let fraction = (rounded % scale).toString().padStart(places, "0");
  if (places === 9) fraction = fraction.replace(/0+$/, "");
  return `${sign}$${whole}.${fraction}`;
}

// The exact amount, as the command line shows it: four decimals at least, every one the
// amount has beyond them.
function exactUsd(nanosText) {
  let nanos = BigInt(nanosText);
  const sign = nanos < 0n ? "-" : "";
  if (nanos < 0n) nanos = -nanos;
  const fraction = (nanos % NANOS_PER_USD).toString().padStart(9, "0").replace(/0{1,5}$/, "");
  return `${sign}$${(nanos / NANOS_PER_USD).toLocaleString("en-US")}.${fraction.padEnd(4, "0")}`;
}

function count(value) {
  return Number(value).toLocaleString("en-US");
}

// -- the page's query --------------------------------------------------------------------

function isoDate(date) {
  return date.toISOString().slice(0, 10);
}

function dayAfter(text) {
  const date = new Date(`${text}T00:00:00Z`);
  date.setUTCDate(date.getUTCDate() + 1);
  return isoDate(date);
}

// The range as the API takes it: "until" is exclusive, the "To" field inclusive.
function rangeParams() {
  const params = new URLSearchParams();
  const since = document.getElementById("since").value;
  const until = document.getElementById("until").value;
  if (since) params.set("since", since);
  if (until) params.set("until", dayAfter(until));
  return params;
}

async function getJSON(path, params) {
  const response = await fetch(`${path}?${params}`, { credentials: "same-origin" });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

// -- drawing ----------------------------------------------------------------------------

function el(tag, attrs = {}, text = null) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  if (text !== null) node.textContent = text;
  return node;
}

function svg(tag, attrs = {}, text = null) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  if (text !== null) node.textContent = text;
  return node;
}

function money(nanosText) {
  const attrs = { class: "num money", "data-nanos": nanosText, title: exactUsd(nanosText) };
  return el("td", attrs, usd(nanosText));
}

function label(name) {
  return name === null ? "(none)" : name;
}

function drawTotals(totals) {
  const cost = document.getElementById("total-cost");
  cost.textContent = usd(totals.cost_nanos);
  cost.title = exactUsd(totals.cost_nanos);
  cost.dataset.nanos = totals.cost_nanos;
  const counts = {
    "total-calls": totals.calls,
    "total-input": totals.input_tokens,
    "total-output": totals.output_tokens,
    "total-unpriced": totals.unpriced_calls,
    "total-estimated": totals.estimated_calls,
  };
  for (const [id, value] of Object.entries(counts)) {
    const node = document.getElementById(id);
    node.textContent = count(value);
    node.dataset.value = String(value);
  }
}

function drawBreakdown(id, rows) {
  const body = document.querySelector(`#${id} tbody`);
  body.replaceChildren();
  if (!rows.length) body.append(emptyRow(3, "No calls in this range."));
  for (const row of rows) {
    const tr = el("tr", { "data-name": label(row.name) });
    tr.append(el("td", {}, label(row.name)), el("td", { class: "num" }, count(row.calls)));
    tr.append(money(row.cost_nanos));
    body.append(tr);
  }
}

function emptyRow(columns, text) {
  const tr = el("tr");
  tr.append(el("td", { colspan: String(columns), class: "none" }, text));
  return tr;
}

function drawBudgets(budgets) {
  const body = document.querySelector("#budgets tbody");
  body.replaceChildren();
  if (!budgets.length) body.append(emptyRow(9, "No budget with a limit."));
  for (const budget of budgets) {
    const tr = el("tr", { "data-project": budget.project, "data-key": budget.key ?? "" });
    tr.append(el("td", {}, budget.project), el("td", {}, budget.key ?? "–"));
    tr.append(el("td", {}, budget.reset), el("td", {}, budget.period));
    tr.append(money(budget.limit_nanos), money(budget.spent_nanos));
    const used = el("td", { class: "used" });
    if (budget.utilization !== null) {
      const share = budget.utilization;
      const meter = el("span", { class: share >= 1 ? "meter over" : share >= 0.8 ? "meter high" : "meter" });
      const fill = el("span");
      fill.style.width = `${Math.min(share, 1) * 100}%`;
      meter.append(fill);
      used.append(meter, document.createTextNode(`${(share * 100).toFixed(1)}%`));
    } else {
      used.textContent = "–";
    }
    tr.append(used, money(budget.burn_nanos));
    tr.append(el("td", { class: "runout", "data-at": budget.runs_out_at ?? "" }, runsOut(budget)));
    body.append(tr);
  }
}

// When the budget runs out at the last hour's burn rate, or why it does not.
function runsOut(budget) {
  if (BigInt(budget.spent_nanos) >= BigInt(budget.limit_nanos)) return "spent";
  if (budget.runs_out_at !== null) return budget.runs_out_at.replace("T", " ").slice(0, 16) + " UTC";
  if (BigInt(budget.burn_nanos) === 0n) return "no spend in the last hour";
  return "lasts the period";
}

function drawChart(series) {
  const chart = document.getElementById("chart");
  const legend = document.getElementById("legend");
  chart.replaceChildren();
  legend.replaceChildren();
  const buckets = series.buckets;
  if (!buckets.length) {
    chart.append(el("p", { class: "none" }, "No calls in this range."));
    return;
  }
  const width = 900, height = 260, left = 70, bottom = 24, top = 8;
  const values = series.series.map((s) => s.cost_nanos.map((v) => Number(BigInt(v)) / 1e9));
  const stacked = buckets.map((_, i) => values.reduce((sum, v) => sum + v[i], 0));
  const max = Math.max(...stacked) || 1;
  const plot = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "Spend over time" });
  const y = (value) => top + (height - top - bottom) * (1 - value / max);
  for (let t = 0; t <= 4; t++) {
    const value = (max * t) / 4;
    plot.append(svg("line", { class: "axis", x1: left, x2: width, y1: y(value), y2: y(value) }));
    const nanos = BigInt(Math.round(value * 1e9));
    plot.append(svg("text", { x: left - 6, y: y(value) + 4, "text-anchor": "end" }, usd(nanos)));
  }
  const slot = (width - left) / buckets.length;
  const bar = Math.max(1, slot * 0.7);
  const labelEvery = Math.ceil(buckets.length / 12);
  buckets.forEach((bucket, i) => {
    const x = left + i * slot + (slot - bar) / 2;
    let base = 0;
    series.series.forEach((s, n) => {
      const value = values[n][i];
      if (!value) return;
      const rect = svg("rect", { class: `s${n}`, x, width: bar, y: y(base + value), height: y(base) - y(base + value) });
      rect.append(svg("title", {}, `${bucket} · ${label(s.name)}: ${usd(s.cost_nanos[i])}`));
      plot.append(rect);
      base += value;
    });
    if (i % labelEvery === 0) {
      plot.append(svg("text", { x: x + bar / 2, y: height - 6, "text-anchor": "middle" }, bucket));
    }
  });
  chart.append(plot);
  series.series.forEach((s, n) => {
    const item = el("li");
    item.append(el("span", { class: `sw s${n}` }), document.createTextNode(label(s.name)));
    legend.append(item);
  });
}

function callRow(call, fresh) {
  const tr = el("tr", { "data-id": String(call.id) });
  if (fresh) tr.classList.add("new");
  const time = (call.created_at || "").replace("T", " ").slice(0, 19);
  tr.append(el("td", {}, time), el("td", {}, call.project), el("td", {}, call.model));
  tr.append(el("td", {}, call.key ?? "–"));
  tr.append(el("td", { class: "num" }, count(call.input_tokens)));
  tr.append(el("td", { class: "num" }, count(call.output_tokens)));
  const cost = money(call.cost_nanos);
  // No price known: recorded at $0, but not free.
  if (call.flags.includes("unpriced")) cost.textContent = "unknown";
  tr.append(cost);
  const flags = el("td", { class: "flags" });
  for (const flag of call.flags) flags.append(el("span", { class: `flag flag-${flag}` }, flag));
  tr.append(flags);
  return tr;
}

function drawCalls(calls, fresh) {
  const body = document.querySelector("#calls tbody");
  if (!fresh) body.replaceChildren();
  body.querySelector("td.none")?.parentElement.remove();
  const rows = calls.map((call) => callRow(call, fresh));
  body.prepend(...rows);
  while (body.rows.length > SHOWN_CALLS) body.lastElementChild.remove();
  if (!body.rows.length) body.append(emptyRow(8, "No calls in this range."));
  for (const call of calls) state.lastId = Math.max(state.lastId ?? 0, call.id);
}

function timeOf(iso) {
  return (iso || "").replace("T", " ").slice(0, 19);
}

function drawRuns(runs) {
  const body = document.querySelector("#runs tbody");
  body.replaceChildren();
  if (!runs.length) body.append(emptyRow(8, "No runs in this range."));
  for (const run of runs) {
    const tr = el("tr", { "data-id": run.id, "data-status": run.status });
    tr.append(el("td", {}, timeOf(run.started_at)), el("td", {}, run.name));
    tr.append(el("td", {}, run.project));
    tr.append(el("td", { class: "num" }, `${run.duration_s.toFixed(2)} s`));
    tr.append(el("td", { class: "num" }, count(run.requests)), money(run.cost_nanos));
    tr.append(run.max_cost_nanos === null ? el("td", { class: "num" }, "–") : money(run.max_cost_nanos));
    const status = el("td", { class: "flags" });
    status.append(el("span", { class: `flag status-${run.status}` }, run.status));
    tr.append(status);
    body.append(tr);
  }
}

function drawRefusals(refusals) {
  const body = document.querySelector("#refusals tbody");
  body.replaceChildren();
  if (!refusals.length) body.append(emptyRow(8, "No call refused in this range."));
  for (const refused of refusals) {
    const tr = el("tr", { "data-project": refused.project, "data-reason": refused.reason });
    tr.append(el("td", {}, timeOf(refused.last_at)), el("td", {}, refused.project));
    tr.append(el("td", {}, refused.model ?? "–"), el("td", {}, refused.key ?? "–"));
    tr.append(el("td", {}, refused.reason));
    tr.append(el("td", { class: "num", "data-value": String(refused.count) }, count(refused.count)));
    tr.append(el("td", { class: "message" }, refused.message));
    const flags = el("td", { class: "flags" });
    for (const flag of refused.flags) flags.append(el("span", { class: `flag flag-${flag}` }, flag));
    tr.append(flags);
    body.append(tr);
  }
}

function fetchRuns() {
  const params = rangeParams();
  params.set("limit", String(SHOWN_RUNS));
  return getJSON("/api/runs", params);
}

function drawRunsAndRefusals(answer) {
  drawRuns(answer.runs);
  drawRefusals(answer.refusals);
}

// -- loading ----------------------------------------------------------------------------

function fetchOverview() {
  const params = rangeParams();
  params.set("step", document.getElementById("step").value);
  params.set("group", document.getElementById("group").value);
  return getJSON("/api/overview", params);
}

function drawOverview(overview) {
  drawTotals(overview.totals);
  drawChart(overview.series);
  drawBudgets(overview.budgets);
  drawBreakdown("by-project", overview.breakdown.project);
  drawBreakdown("by-model", overview.breakdown.model);
  drawBreakdown("by-key", overview.breakdown.key);
}

// Everything again (a new range or grouping): both answers are drawn in one go, so the
// page never shows the figures of one range beside the calls of another.
async function loadAll() {
  const generation = ++state.generation;
  clearTimeout(state.polling);
  document.body.dataset.state = "loading";
  try {
    const params = rangeParams();
    params.set("limit", String(SHOWN_CALLS));
    const [calls, overview, runs] = await Promise.all([
      getJSON("/api/calls", params),
      fetchOverview(),
      fetchRuns(),
    ]);
    if (generation !== state.generation) return;
    state.lastId = null;
    drawOverview(overview);
    drawCalls(calls.calls, false);
    drawRunsAndRefusals(runs);
    showError(null);
    showLive(true);
    document.body.dataset.state = "ready";
    performance.mark("llm-toll:figures");
  } catch (error) {
    showError(error);
  }
  if (generation === state.generation) schedulePoll(generation);
}

function schedulePoll(generation) {
  state.polling = setTimeout(() => poll(generation), POLL_MS);
}

async function poll(generation) {
  try {
    const params = rangeParams();
    if (state.lastId !== null) params.set("after_id", String(state.lastId));
    params.set("limit", String(SHOWN_CALLS));
    // Runs end and calls are refused without a new call: read on every poll.
    const [{ calls }, runs] = await Promise.all([getJSON("/api/calls", params), fetchRuns()]);
    if (generation !== state.generation) return;
    drawRunsAndRefusals(runs);
    if (calls.length) {
      const overview = await fetchOverview();
      if (generation !== state.generation) return;
      drawOverview(overview);
      drawCalls(calls, true);
    }
    showLive(true);
    showError(null);
  } catch (error) {
    showLive(false);
    showError(error);
  }
  if (generation === state.generation) schedulePoll(generation);
}

function showLive(on) {
  const live = document.getElementById("live");
  live.classList.toggle("on", on);
  live.textContent = on ? `live · ${new Date().toISOString().slice(11, 19)} UTC` : "offline";
}

function showError(error) {
  const node = document.getElementById("error");
  node.hidden = error === null;
  node.textContent = error === null ? "" : `Could not read the figures: ${error.message}`;
}

// The range the page opens on: the last 7 days, read through the ledger's index on
// (project, created_at) rather than a scan of its whole history.
const DEFAULT_DAYS = 7;

function setRange(days) {
  const since = document.getElementById("since");
  const until = document.getElementById("until");
  until.value = "";
  if (days === 0) {
    since.value = "";
  } else {
    const start = new Date();
    start.setUTCDate(start.getUTCDate() - (days - 1));
    since.value = isoDate(start);
  }
}

function preset(days) {
  setRange(days);
  loadAll();
}

document.addEventListener("DOMContentLoaded", () => {
  for (const id of ["since", "until", "step", "group"]) {
    document.getElementById(id).addEventListener("change", loadAll);
  }
  for (const button of document.querySelectorAll("[data-days]")) {
    button.addEventListener("click", () => preset(Number(button.dataset.days)));
  }
  setRange(DEFAULT_DAYS);
  loadAll();
});
