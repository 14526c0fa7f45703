// How the page writes times, durations and amounts. Times are UTC, as the daemon keeps them.

export function parseTime(text) {
  return text ? new Date(text) : null;
}

const pad = (n) => String(n).padStart(2, "0");

// "14:30" on the daemon's day, "12-04 14:30" on another one.
export function shortTime(date, today) {
  if (!date) return "–";
  const time = `${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}`;
  if (today && date.toISOString().slice(0, 10) === today.toISOString().slice(0, 10)) return time;
  return `${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())} ${time}`;
}

export function fullTime(date) {
  return date ? `${date.toISOString().slice(0, 16).replace("T", " ")} UTC` : "–";
}

export function duration(seconds) {
  if (seconds == null || !isFinite(seconds)) return "–";
  const s = Math.round(Math.abs(seconds));
  if (s < 90) return `${s} s`;
  if (s < 90 * 60) return `${Math.round(s / 60)} min`;
  if (s < 48 * 3600) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} d`;
}

export function number(value, digits = 1) {
  if (value == null || !isFinite(value)) return "–";
  return value.toLocaleString("en", { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

// Grams and kilowatt-hours span orders of magnitude (a test run is milligrams): three
// significant digits below 1, two decimals up to 100, whole numbers above.
export function amount(value) {
  if (value == null || !isFinite(value)) return "–";
  const size = Math.abs(value);
  if (size === 0) return "0";
  if (size < 1) return String(Number(value.toPrecision(3)));
  return number(value, size < 100 ? 2 : 0);
}

export function shortId(id) {
  return id.slice(0, 8);
}

// Green at the cleanest intensity seen, red at the dirtiest.
export function intensityColour(value, low, high) {
  if (value == null) return "#9aa5a0";
  const t = high > low ? Math.min(1, Math.max(0, (value - low) / (high - low))) : 0.5;
  return `hsl(${Math.round(130 * (1 - t))}, 62%, 44%)`;
}
