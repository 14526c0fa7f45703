// The dashboard: polls the daemon's JSON API every few seconds and draws what it says.
// Reads that need the token (jobs, plan) ask for it through a banner; actions ask before
// they are sent.

import { askToken, forgetToken, getJson, postWithToken, token, Unauthorized } from "./api.js";
import { drawChart } from "./chart.js";
import { amount, duration, fullTime, number, parseTime, shortTime } from "./format.js";
import {
  budgetColumns,
  historyColumns,
  queueColumns,
  renderFacts,
  renderTable,
  runningColumns,
} from "./tables.js";

const POLL_MS = 4000;
const HISTORY_LIMIT = 20;
const REASON_ACTIONS = new Set(["defer", "start", "plan", "pause", "resume", "expire", "reject"]);
const $ = (id) => document.getElementById(id);

const BUDGET_PROBE_EVERY = 15;  // polls
const view = { summary: null, intensity: null, jobs: null, evidence: new Map(), chartData: null, polls: 0 };

function query(states, limit) {
  return `/jobs?${states.map((s) => `state=${encodeURIComponent(s)}`).join("&")}&limit=${limit}`;
}

// Queue, running and history: the planned jobs in plan order, the rest newest first.
async function loadJobs(summary) {
  const open = summary.states.filter((s) => !s.final && s.state !== "running" && s.state !== "scheduled");
  const final = summary.states.filter((s) => s.final).map((s) => s.state);
  const [plan, running, waiting, history] = await Promise.all([
    getJson("/plan?limit=100"),
    getJson(query(["running"], 100)),
    open.length ? getJson(query(open.map((s) => s.state), 50)) : { items: [] },
    getJson(query(final, HISTORY_LIMIT)),
  ]);
  await attachEvidence(history.items);
  return { queue: [...plan, ...waiting.items], running: running.items, history: history.items };
}

// A finished job's runs never change: fetched once, then kept.
async function attachEvidence(jobs) {
  await Promise.all(
    jobs
      .filter((job) => !view.evidence.has(job.id))
      .map(async (job) => {
        const detail = await getJson(`/jobs/${encodeURIComponent(job.id)}`);
        view.evidence.set(job.id, detail ? detail.evidence : []);
      }),
  );
  for (const job of jobs) job.runs = view.evidence.get(job.id) ?? [];
}

async function refresh() {
  try {
    const summary = await getJson("/summary");
    const intensity = await getJson("/intensity");
    view.summary = summary;
    view.intensity = intensity;
    try {
      view.jobs = await loadJobs(summary);
      hideBanner();
    } catch (error) {
      if (!(error instanceof Unauthorized)) throw error;
      view.jobs = null;
      showBanner("This daemon's job list needs its token.", "Enter token");
    }
    // /budgets may not exist on this daemon: asked every poll once found, else every minute.
    if (view.budgets || view.polls++ % BUDGET_PROBE_EVERY === 0) {
      view.budgets = await getJson("/budgets").catch(() => null);
    }
    render();
  } catch (error) {
    showBanner(`Cannot reach the daemon: ${error.message}`);
  }
}

function render() {
  const { summary, intensity, jobs } = view;
  const now = parseTime(summary.now);
  $("clock").textContent = fullTime(now);
  $("clock").dateTime = summary.now;
  showSaved(summary.totals.saved_g);
  renderProvider(summary, intensity);
  renderFacts($("states"), summary.states.map((s) => [s.state, String(s.count)]));
  renderChart(now, summary, intensity, jobs);
  if (jobs) renderJobs(now, summary, jobs);
  renderBudgets(view.budgets);
  $("token-button").textContent = token() ? "Forget token" : "Enter token";
}

function renderProvider(summary, intensity) {
  const loop = summary.loop;
  const facts = intensity
    ? [
        ["source", intensity.source.includes(intensity.region) ? intensity.source : `${intensity.source}:${intensity.region}`],
        ["signal", intensity.signal],
        ["now", intensity.current == null ? "–" : `${number(intensity.current)} gCO₂/kWh`],
        ["issued", fullTime(parseTime(intensity.issued_at))],
        ["answered by", intensity.fallback ? `fallback ${intensity.fallback}` : "the first source"],
      ]
    : [["source", "no forecast cached yet"]];
  facts.push(
    ["last tick", loop.last_tick_at ? fullTime(parseTime(loop.last_tick_at)) : "not yet"],
    ["fallbacks used", String(loop.fallbacks)],
    ["refresh errors", String(loop.provider_errors), loop.provider_errors ? "warn" : ""],
    ["policy", summary.threshold == null ? summary.policy : `${summary.policy}, threshold ${summary.threshold}`],
  );
  for (const problem of loop.problems) facts.push(["problem", problem, "warn"]);
  renderFacts($("provider"), facts);
}

function chartRuns(now, jobs) {
  if (!jobs) return [];
  const runs = [];
  const label = (job) => `${job.name}${job.project ? ` · ${job.project}` : ""}`;
  for (const job of jobs.queue.filter((j) => j.planned_start)) {
    const start = parseTime(job.planned_start).getTime();
    runs.push({ id: job.id, job, label: label(job), kind: "planned", start, end: start + job.duration_s * 1e3 });
  }
  for (const job of jobs.running) {
    const start = parseTime(job.started_at).getTime();
    const end = Math.max(start + job.duration_s * 1e3, now.getTime());
    runs.push({ id: job.id, job, label: label(job), kind: "running", start, end });
  }
  for (const job of jobs.history) {
    for (const run of job.runs) {
      const start = parseTime(run.started_at).getTime();
      const end = Math.max(parseTime(run.finished_at).getTime(), start + 60e3);
      runs.push({ id: job.id, job, run, label: label(job), kind: "past", start, end, intensity: run.actual_intensity });
    }
  }
  return runs;
}

function renderChart(now, summary, intensity, jobs) {
  const points = intensity ? intensity.forecast.map((p) => ({ start: parseTime(p.start).getTime(), value: p.value })) : [];
  const step = points.length > 1 ? points[1].start - points[0].start : 1800e3;
  points.forEach((p, i) => (p.end = i + 1 < points.length ? points[i + 1].start : p.start + step));
  const data = { now: now.getTime(), forecast: points, threshold: summary.threshold, runs: chartRuns(now, jobs) };
  $("chart-sub").textContent = intensity
    ? `${intensity.source} ${intensity.signal} intensity, gCO₂/kWh; times UTC${jobs ? "" : " (jobs hidden: enter the token)"}`
    : "no forecast cached yet";
  // Redrawn only when something shown changed (the clock by the minute): a redraw under the
  // pointer would drop the tooltip every poll.
  const key = JSON.stringify({ ...data, now: Math.floor(data.now / 60e3), runs: data.runs.map(chartKey) });
  if (key === view.chartKey) return;
  view.chartData = data;
  view.chartKey = key;
  redraw();
}

function redraw() {
  showTip(null);  // the node under it is replaced: no mouseleave would ever hide it
  view.chartWidth = $("chart").clientWidth;
  drawChart($("chart"), view.chartData, showTip);
}

const chartKey = (run) => [run.id, run.kind, run.start, run.end, run.intensity, run.job.state];

function renderJobs(now, summary, jobs) {
  const count = (states) => summary.states.filter((s) => states(s)).reduce((n, s) => n + s.count, 0);
  const queued = count((s) => !s.final && s.state !== "running");
  const finished = count((s) => s.final);
  $("queue-title").textContent = `Queue (${jobs.queue.length} of ${queued})`;
  $("history-title").textContent = `History (latest ${jobs.history.length} of ${finished})`;
  $("running-title").textContent = `Running (${jobs.running.length})`;
  renderTable($("queue"), queueColumns(now, cancel), jobs.queue, "nothing waiting");
  renderTable($("running"), runningColumns(now, now, cancel), jobs.running, "nothing running");
  renderTable($("history"), historyColumns(now), jobs.history, "no finished jobs yet");
}

function renderBudgets(budgets) {
  const items = Array.isArray(budgets) ? budgets : budgets?.items;
  $("budgets-card").hidden = !Array.isArray(items) || items.length === 0;  // none set: no card
  if (Array.isArray(items)) renderTable($("budgets"), budgetColumns(items), items, "no budgets set");
}

// The savings counter counts up to each new total rather than jumping.
let shownSaved = 0;
function showSaved(target) {
  const start = shownSaved;
  const began = performance.now();
  const step = (t) => {
    const f = Math.min(1, (t - began) / 800);
    shownSaved = start + (target - start) * f;
    $("saved-value").textContent = amount(shownSaved);
    if (f < 1) requestAnimationFrame(step);
  };
  requestAnimationFrame(step);
}

async function cancel(job, button) {
  button.disabled = true;
  const result = await postWithToken(`/jobs/${encodeURIComponent(job.id)}/cancel`, `Cancelling ${job.name}`);
  if (result.ok) showBanner(`${job.name}: ${result.body.state === "running" ? "asked to stop" : "cancelled"}`);
  else {
    showBanner(`${job.name} not cancelled: ${result.message}`, "Enter token", "error");
    button.disabled = false;
  }
  await refresh();
}

// The form's fields as POST /jobs wants them; the command is split at spaces (quoting is
// the CLI's job: greenai submit -- CMD ...).
function submission(form) {
  const field = (name) => form.elements[name].value.trim();
  const body = { command: field("command").split(/\s+/).filter(Boolean), duration: field("duration") };
  if (field("name")) body.name = field("name");
  if (field("max_delay")) body.max_delay = field("max_delay");
  if (field("project")) body.project = field("project");
  body.gpus = Number(field("gpus") || 1);
  return body;
}

async function submit(event) {
  event.preventDefault();
  const form = event.target;
  const button = $("submit-button");
  button.disabled = true;
  const body = submission(form);
  const result = await postWithToken("/jobs", "Submitting a job", body);
  if (result.ok) {
    showBanner(`${result.body.name}: queued as ${result.body.id.slice(0, 8)}, deadline ${result.body.deadline}`);
    form.elements.command.value = "";
  } else {
    showBanner(`not submitted: ${result.message}`, null, "error");
  }
  button.disabled = false;
  await refresh();
}

function showBanner(text, action = null, kind = "info") {
  const banner = $("banner");
  banner.replaceChildren(document.createTextNode(text));
  banner.className = `banner ${kind}`;
  if (action) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = action;
    button.addEventListener("click", () => askToken("Reading jobs or acting on them").then(refresh));
    banner.appendChild(button);
  }
  banner.hidden = false;
}

function hideBanner() {
  const banner = $("banner");
  if (!banner.classList.contains("error")) banner.hidden = true;
}

// The tooltip: what the run is, then why the daemon decided so (its latest decision).
const reasons = new Map();
async function reasonFor(job) {
  const cached = reasons.get(job.id);
  if (cached && (job.state !== "scheduled" || Date.now() - cached.at < POLL_MS)) return cached.text;
  const detail = await getJson(`/jobs/${encodeURIComponent(job.id)}`).catch(() => null);
  const decisions = detail ? detail.decisions : [];
  const why = [...decisions].reverse().find((d) => REASON_ACTIONS.has(d.action)) ?? decisions.at(-1);
  const text = why ? `${why.action}: ${why.reason}` : "no decision yet";
  reasons.set(job.id, { text, at: Date.now() });
  return text;
}

function showTip(run, event) {
  const tip = $("tip");
  if (!run) {
    tip.hidden = true;
    return;
  }
  const today = new Date(view.chartData.now);
  const lines = [
    [`${run.job.name} (${run.job.state})`, "tip-title"],
    [`${shortTime(new Date(run.start), today)} → ${shortTime(new Date(run.end), today)}, ${duration((run.end - run.start) / 1e3)}`],
  ];
  if (run.kind === "past") lines.push([`saw ${number(run.intensity)} gCO₂/kWh, saved ${amount(run.run.saved_g)} g`]);
  lines.push(["…", "tip-reason"]);
  tip.replaceChildren(...lines.map(([text, className]) => {
    const div = document.createElement("div");
    div.textContent = text;
    if (className) div.className = className;
    return div;
  }));
  placeTip(tip, event);
  tip.hidden = false;
  tip.dataset.jobId = run.id;
  reasonFor(run.job).then((text) => {
    if (tip.dataset.jobId === run.id) tip.querySelector(".tip-reason").textContent = text;
  });
}

function placeTip(tip, event) {
  const card = tip.parentElement.getBoundingClientRect();
  const target = event ? { x: event.clientX, y: event.clientY } : null;
  const x = target ? target.x - card.left + 12 : 60;
  const y = target ? target.y - card.top + 12 : 60;
  tip.style.left = `${Math.min(x, card.width - 260)}px`;
  tip.style.top = `${y}px`;
}

function start() {
  $("submit-form").addEventListener("submit", submit);
  $("token-button").addEventListener("click", async () => {
    if (token()) forgetToken();
    else await askToken("Reading jobs or acting on them");
    await refresh();
  });
  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    // Only a new width needs a redraw (not a taller window, nor a full-page capture).
    const wider = () => view.chartData && $("chart").clientWidth !== view.chartWidth;
    resizeTimer = setTimeout(() => wider() && redraw(), 150);
  });
  const loop = async () => {
    if (!document.hidden) await refresh();
    setTimeout(loop, POLL_MS);
  };
  loop();
}

start();
