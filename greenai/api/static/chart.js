// The forecast as an SVG step line with the threshold, and every job's run laid over it:
// planned and running ones as spans over the forecast, past ones coloured by the intensity
// they actually saw. Below the plot, one lane per overlapping run carries its bar.

import { intensityColour, shortTime } from "./format.js";

const SVG = "http://www.w3.org/2000/svg";
const HOUR = 3600e3;
const PLOT_HEIGHT = 220;
const LANE = 18;
const MAX_LANES = 10;
const MARGIN = { left: 44, right: 12, top: 10, bottom: 22 };

function el(name, attributes = {}, parent = null) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (parent) parent.appendChild(node);
  return node;
}

function niceStep(span, count) {
  const raw = span / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) || raw;
}

// The time range shown: a few hours of the past, the forecast and every planned run.
function timeRange(now, forecast, runs) {
  let start = now - 3 * HOUR;
  let end = now + 24 * HOUR;
  if (forecast.length) end = forecast[forecast.length - 1].end;
  for (const run of runs) {
    start = Math.min(start, Math.max(run.start, now - 24 * HOUR));
    end = Math.max(end, Math.min(run.end, now + 72 * HOUR));
  }
  return [start, end];
}

// Greedy interval packing: each run takes the first lane free at its start.
function assignLanes(runs) {
  const ends = [];
  for (const run of [...runs].sort((a, b) => a.start - b.start)) {
    let lane = ends.findIndex((end) => end <= run.start);
    if (lane < 0) lane = ends.length;
    ends[lane] = run.end;
    run.lane = Math.min(lane, MAX_LANES - 1);
  }
  return Math.min(Math.max(ends.length, 1), MAX_LANES);
}

// `data`: {now, forecast: [{start, end, value}], threshold, runs: [{id, label, kind, start,
// end, intensity}]}; `onHover(run | null, event)` shows or hides the tooltip.
export function drawChart(container, data, onHover) {
  const { now, forecast, threshold, runs } = data;
  const width = Math.max(container.clientWidth, 280);
  const lanes = assignLanes(runs);
  const height = MARGIN.top + PLOT_HEIGHT + 8 + lanes * LANE + MARGIN.bottom;
  const [t0, t1] = timeRange(now, forecast, runs);
  const values = forecast.map((p) => p.value).concat(runs.map((r) => r.intensity ?? NaN));
  const known = values.filter((v) => isFinite(v));
  const low = known.length ? Math.min(...known) : 0;
  const high = known.length ? Math.max(...known) : 1;
  const top = Math.max(high, threshold ?? 0, 1) * 1.12;
  const x = (t) => MARGIN.left + ((t - t0) / (t1 - t0)) * (width - MARGIN.left - MARGIN.right);
  const y = (v) => MARGIN.top + PLOT_HEIGHT * (1 - v / top);

  const svg = el("svg", {
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    role: "img",
    "aria-label": "carbon intensity forecast with planned and past runs",
  });
  drawAxes(svg, { x, y, t0, t1, top, width, height, now, lanes });
  drawSpans(svg, runs, { x, low, high }, onHover);
  drawForecast(svg, forecast, { x, y });
  if (threshold != null) {
    const line = el("g", { class: "threshold" }, svg);
    el("line", { x1: MARGIN.left, x2: width - MARGIN.right, y1: y(threshold), y2: y(threshold) }, line);
    el("text", { x: width - MARGIN.right - 4, y: y(threshold) - 4, "text-anchor": "end" }, line)
      .textContent = `threshold ${threshold}`;
  }
  el("line", { class: "now-line", x1: x(now), x2: x(now), y1: MARGIN.top, y2: height - MARGIN.bottom }, svg);
  el("text", { class: "now-label", x: x(now) + 3, y: MARGIN.top + 10 }, svg).textContent = "now";
  drawLanes(svg, runs, { x, low, high }, onHover);
  container.replaceChildren(svg);
}

function drawAxes(svg, { x, y, t0, t1, top, width, height, now, lanes }) {
  const axes = el("g", { class: "axes" }, svg);
  const step = niceStep(top, 4);
  for (let v = 0; v <= top; v += step) {
    el("line", { class: "grid", x1: MARGIN.left, x2: width - MARGIN.right, y1: y(v), y2: y(v) }, axes);
    el("text", { x: MARGIN.left - 6, y: y(v) + 4, "text-anchor": "end" }, axes).textContent = v;
  }
  const hours = Math.max(1, niceStep((t1 - t0) / HOUR, Math.max(2, Math.floor(width / 90))));
  const first = Math.ceil(t0 / (hours * HOUR)) * hours * HOUR;
  for (let t = first; t <= t1; t += hours * HOUR) {
    el("line", { class: "tick", x1: x(t), x2: x(t), y1: height - MARGIN.bottom, y2: height - MARGIN.bottom + 4 }, axes);
    el("text", { x: x(t), y: height - 6, "text-anchor": "middle" }, axes)
      .textContent = shortTime(new Date(t), new Date(now));
  }
  const laneTop = MARGIN.top + PLOT_HEIGHT + 8;
  el("rect", { class: "lanes-bg", x: MARGIN.left, y: laneTop, width: width - MARGIN.left - MARGIN.right, height: lanes * LANE }, axes);
  el("text", { x: MARGIN.left - 6, y: laneTop + 12, "text-anchor": "end" }, axes).textContent = "jobs";
}

function drawForecast(svg, forecast, { x, y }) {
  if (!forecast.length) return;
  let path = `M ${x(forecast[0].start)} ${y(forecast[0].value)}`;
  for (const point of forecast) path += ` H ${x(point.start)} V ${y(point.value)} H ${x(point.end)}`;
  el("path", { class: "forecast-line", d: path }, svg);
}

function hoverable(node, run, onHover) {
  node.addEventListener("mouseenter", (event) => onHover(run, event));
  node.addEventListener("mousemove", (event) => onHover(run, event));
  node.addEventListener("mouseleave", () => onHover(null));
  node.setAttribute("tabindex", "0");
  node.addEventListener("focus", () => onHover(run, null));
  node.addEventListener("blur", () => onHover(null));
}

function fillOf(run, { low, high }) {
  return run.kind === "past" ? intensityColour(run.intensity, low, high) : null;
}

// A translucent column over the plot for each run: where it sits on the forecast.
function drawSpans(svg, runs, scale, onHover) {
  const group = el("g", { class: "spans" }, svg);
  for (const run of runs) {
    const left = scale.x(run.start);
    const span = el("rect", {
      class: `span ${run.kind}`,
      x: left,
      y: MARGIN.top,
      width: Math.max(scale.x(run.end) - left, 2),
      height: PLOT_HEIGHT,
      "data-job-id": run.id,
    }, group);
    const fill = fillOf(run, scale);
    if (fill) span.setAttribute("fill", fill);
    hoverable(span, run, onHover);
  }
}

function drawLanes(svg, runs, scale, onHover) {
  const group = el("g", { class: "lanes" }, svg);
  const laneTop = MARGIN.top + PLOT_HEIGHT + 8;
  for (const run of runs) {
    const left = scale.x(run.start);
    const barWidth = Math.max(scale.x(run.end) - left, 3);
    const bar = el("g", { class: `job-bar ${run.kind}`, "data-job-id": run.id, "data-kind": run.kind }, group);
    const rect = el("rect", { x: left, y: laneTop + run.lane * LANE + 2, width: barWidth, height: LANE - 4, rx: 3 }, bar);
    const fill = fillOf(run, scale);
    if (fill) rect.setAttribute("fill", fill);
    if (barWidth > run.label.length * 6 + 8) {  // a label only where it fits
      el("text", { x: left + 4, y: laneTop + run.lane * LANE + LANE - 6 }, bar).textContent = run.label;
    }
    bar.setAttribute("aria-label", run.label);
    hoverable(bar, run, onHover);
  }
}
