/**
 * Formatting for the Control UI, in the browser's locale and time zone.
 *
 * @module
 */

/**
 * A clock time: "14:03" today, "3 Mar 14:03" on another day.
 * @param {number | undefined | null} ts epoch ms
 * @param {number} [now]
 */
export function time(ts, now = Date.now()) {
  if (typeof ts !== "number" || !Number.isFinite(ts)) return "";
  const d = new Date(ts);
  const n = new Date(now);
  const hm = d.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" });
  if (d.toDateString() === n.toDateString()) return hm;
  const day = d.toLocaleDateString(undefined, {
    day: "numeric",
    month: "short",
    ...(d.getFullYear() !== n.getFullYear() ? { year: "numeric" } : {}),
  });
  return `${day} ${hm}`;
}

/**
 * Date and time in full: "3 Mar 2026, 14:03:07".
 * @param {number | undefined | null} ts epoch ms
 */
export function dateTime(ts) {
  if (typeof ts !== "number" || !Number.isFinite(ts)) return "";
  return new Date(ts).toLocaleString(undefined, {
    year: "numeric",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  });
}

/**
 * Relative time: "just now", "5 min ago", "in 2 h", "3 days ago".
 * @param {number | undefined | null} ts epoch ms
 * @param {number} [now]
 */
export function relative(ts, now = Date.now()) {
  if (typeof ts !== "number" || !Number.isFinite(ts)) return "";
  const diff = ts - now;
  const abs = Math.abs(diff);
  if (abs < 45_000) return "just now";
  /** @type {[number, string][]} */
  const units = [[60_000, "min"], [3_600_000, "h"], [86_400_000, "day"]];
  let text;
  if (abs < 3_600_000) text = `${Math.round(abs / units[0][0])} min`;
  else if (abs < 86_400_000) text = `${Math.round(abs / units[1][0])} h`;
  else {
    const days = Math.round(abs / units[2][0]);
    text = `${days} ${days === 1 ? "day" : "days"}`;
  }
  return diff < 0 ? `${text} ago` : `in ${text}`;
}

/**
 * A duration: "850 ms", "12 s", "3 min 5 s", "2 h 10 min".
 * @param {number | undefined | null} ms
 */
export function duration(ms) {
  if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0) return "";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 ? `${m} min ${s % 60} s` : `${m} min`;
  const h = Math.floor(m / 60);
  return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
}

/**
 * Bytes: "512 B", "1.5 KB", "3.2 MB".
 * @param {number | undefined | null} n
 */
export function bytes(n) {
  if (typeof n !== "number" || !Number.isFinite(n)) return "";
  if (n < 1024) return `${n} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

/**
 * Token counts: "950", "12.3k", "4.5M".
 * @param {number | undefined | null} n
 */
export function tokens(n) {
  if (typeof n !== "number" || !Number.isFinite(n)) return "";
  if (Math.abs(n) < 1000) return String(Math.round(n));
  if (Math.abs(n) < 1_000_000) return `${(n / 1000).toFixed(n < 10_000 ? 1 : 0)}k`;
  return `${(n / 1_000_000).toFixed(1)}M`;
}

/**
 * A cost in US dollars: "$0.00", "$0.0042", "$1.25".
 * @param {number | undefined | null} usd
 */
export function cost(usd) {
  if (typeof usd !== "number" || !Number.isFinite(usd)) return "";
  if (usd === 0) return "$0.00";
  if (Math.abs(usd) < 0.01) return `$${usd.toFixed(4)}`;
  return `$${usd.toFixed(2)}`;
}

/**
 * A number with the locale's grouping: "12,345".
 * @param {number | undefined | null} n
 */
export function num(n) {
  if (typeof n !== "number" || !Number.isFinite(n)) return "";
  return n.toLocaleString();
}
