// The queue, running, history and budget tables, and the two fact lists. Every value goes in
// as text (textContent), never as HTML: job names and projects are whatever clients sent.

import { amount, duration, number, parseTime, shortId, shortTime } from "./format.js";

function cell(row, value, className, label) {
  const td = row.insertCell();
  td.dataset.label = label;  // a phone shows each row as a card of labelled lines
  if (value instanceof Node) td.appendChild(value);
  else td.textContent = value ?? "–";
  if (className) td.className = className;
  return td;
}

// `columns`: [{head, value(item) -> text | Node, className}].
export function renderTable(table, columns, items, empty) {
  const head = document.createElement("thead");
  const headRow = head.insertRow();
  for (const column of columns) {
    const th = document.createElement("th");
    th.textContent = column.head;
    th.scope = "col";
    if (column.className) th.className = column.className;
    headRow.appendChild(th);
  }
  const body = document.createElement("tbody");
  for (const item of items) {
    const row = body.insertRow();
    if (item.id) row.dataset.jobId = item.id;
    if (item.state) row.dataset.state = item.state;
    for (const column of columns) cell(row, column.value(item), column.className, column.head);
  }
  if (!items.length) {
    const td = body.insertRow().insertCell();
    td.colSpan = columns.length;
    td.className = "empty";
    td.textContent = empty;
  }
  table.replaceChildren(head, body);
}

export function renderFacts(list, facts) {
  const nodes = [];
  for (const [term, value, className] of facts) {
    const dt = document.createElement("dt");
    dt.textContent = term;
    const dd = document.createElement("dd");
    dd.textContent = value ?? "–";
    if (className) dd.className = className;
    nodes.push(dt, dd);
  }
  list.replaceChildren(...nodes);
}

function jobName(job) {
  const span = document.createElement("span");
  span.className = "job-name";
  span.textContent = job.name;
  const id = document.createElement("small");
  id.textContent = ` ${shortId(job.id)}`;
  span.appendChild(id);
  span.title = job.id;
  return span;
}

function stateBadge(job) {
  const badge = document.createElement("span");
  badge.className = `state state-${job.state}`;
  badge.textContent = job.cancel_requested && job.state === "running" ? "stopping" : job.state;
  return badge;
}

function cancelButton(job, onCancel) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "cancel";
  button.textContent = "Cancel";
  button.disabled = job.cancel_requested;
  button.addEventListener("click", () => onCancel(job, button));
  return button;
}

const gpus = (job) => (job.gpu_ids.length ? `${job.gpus} (${job.gpu_ids.join(",")})` : job.gpus);

export function queueColumns(today, onCancel) {
  return [
    { head: "job", value: jobName },
    { head: "state", value: stateBadge },
    { head: "project", value: (j) => j.project },
    { head: "GPUs", value: gpus, className: "num" },
    { head: "planned start", value: (j) => shortTime(parseTime(j.planned_start), today) },
    { head: "runs for", value: (j) => duration(j.duration_s), className: "num" },
    { head: "deadline", value: (j) => shortTime(parseTime(j.deadline), today) },
    { head: "policy", value: (j) => j.policy ?? "default" },
    { head: "", value: (j) => cancelButton(j, onCancel) },
  ];
}

export function runningColumns(now, today, onCancel) {
  const elapsed = (j) => (now - parseTime(j.started_at)) / 1000;
  return [
    { head: "job", value: jobName },
    { head: "state", value: stateBadge },
    { head: "project", value: (j) => j.project },
    { head: "GPUs", value: gpus, className: "num" },
    { head: "host", value: (j) => j.host },
    { head: "started", value: (j) => shortTime(parseTime(j.started_at), today) },
    { head: "elapsed / expected", value: (j) => `${duration(elapsed(j))} / ${duration(j.duration_s)}` },
    { head: "deadline", value: (j) => shortTime(parseTime(j.deadline), today) },
    { head: "power", value: livePower, className: "num" },
    { head: "", value: (j) => cancelButton(j, onCancel) },
  ];
}

// A running job's draw now, as its meters last told it (`job.power`); CodeCarbon and RAPL
// only give energy at the end, so a job measured by them alone shows none.
function livePower(job) {
  if (!job.power) return "not measured live";
  return `${Math.round(job.power.watts)} W (${job.power.meters})`;
}

// History rows carry their runs' evidence (`job.runs`), summed per job.
export function historyColumns(today) {
  const sum = (job, key) => {
    const values = (job.runs ?? []).map((r) => r[key]).filter((v) => v != null);
    return values.length ? values.reduce((a, b) => a + b, 0) : null;
  };
  return [
    { head: "job", value: jobName },
    { head: "state", value: stateBadge },
    { head: "project", value: (j) => j.project },
    { head: "GPUs", value: (j) => j.gpus, className: "num" },
    { head: "planned start", value: (j) => shortTime(parseTime(j.planned_start), today) },
    { head: "ran", value: (j) => shortTime(parseTime(j.started_at), today) },
    { head: "deadline", value: (j) => shortTime(parseTime(j.deadline), today) },
    { head: "energy kWh", value: (j) => amount(sum(j, "energy_kwh")), className: "num" },
    { head: "gCO₂", value: (j) => amount(sum(j, "operational_g")), className: "num" },
    { head: "saved gCO₂", value: (j) => amount(sum(j, "saved_g")), className: "num saved-cell" },
  ];
}

// Budgets: whatever fields the endpoint gives, one column each.
export function budgetColumns(items) {
  const keys = [...new Set(items.flatMap((item) => Object.keys(item)))];
  return keys.map((key) => ({
    head: key.replaceAll("_", " "),
    value: (item) => (typeof item[key] === "number" ? number(item[key], 2) : String(item[key] ?? "–")),
  }));
}
