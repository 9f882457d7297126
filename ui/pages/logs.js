/**
 * Logs: a live tail of gw's JSON-lines log. `logs.tail` without a cursor
 * gives the last lines and a byte cursor; the page then asks for the lines
 * after that cursor every 1.5 s (at once again while the answer says there
 * is more). A cursor past the end means the log rotated (`reset`): the page
 * marks it and goes on from the new file.
 *
 * A filter box (words, case-insensitive, all must match) and a level filter
 * hide lines without dropping them. The view follows new lines while it is
 * scrolled to the bottom and stops following when the person scrolls up
 * ("Jump to latest" resumes). At most 1000 lines stay in the page.
 *
 * DOM hooks (data-testid):
 * - `logs-filter` (search input), `logs-level` (select: all | info | warn | error),
 *   `logs-follow` (the follow / jump button, `aria-pressed` while following),
 *   `logs-status`.
 * - `logs-lines` (the scrolling box, `data-following`), `log-line` (one line,
 *   `data-level`), `logs-empty`.
 *
 * @module
 */
import { clear, debounce, h, notAvailable } from "../lib/dom.js";
import { bytes, dateTime } from "../lib/fmt.js";
import { visible } from "../lib/text.js";

/** Lines kept in the page. */
export const MAX_LINES = 1000;
const POLL_MS = 1500;
const RANK = /** @type {Record<string, number>} */ ({ debug: 10, info: 20, warn: 30, error: 40 });
/** Fields every line has, shown in their own columns. */
const OWN = new Set(["time", "level", "subsystem", "message", "msg"]);

/**
 * A log line as the page shows it.
 * @param {string} raw
 * @returns {{ time: string, level: string, message: string, fields: string, title: string }}
 */
export function parseLine(raw) {
  /** @type {any} */
  let o;
  try {
    o = JSON.parse(raw);
  } catch {
    return { time: "", level: "", message: visible(raw), fields: "", title: "" };
  }
  if (!o || typeof o !== "object" || Array.isArray(o)) {
    return { time: "", level: "", message: visible(raw), fields: "", title: "" };
  }
  const ts = typeof o.time === "string" ? Date.parse(o.time) : NaN;
  const time = Number.isFinite(ts)
    ? new Date(ts).toLocaleTimeString(undefined, {
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
      hour12: false,
    })
    : "";
  const level = typeof o.level === "string" ? o.level.toLowerCase() : "";
  const fields = Object.entries(o)
    .filter(([k, v]) => !OWN.has(k) || (k === "subsystem" && v !== "gateway"))
    .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
    .join(" ");
  return {
    time,
    level,
    message: visible(o.message ?? o.msg ?? ""),
    fields: visible(fields),
    title: Number.isFinite(ts) ? dateTime(ts) : "",
  };
}

/**
 * @param {HTMLElement} el
 * @param {any} app
 * @returns {() => void}
 */
function mount(el, app) {
  const methods = app.hello?.features?.methods ?? [];
  clear(el);
  if (!methods.includes("logs.tail")) {
    el.append(h("h1", null, "Logs"), notAvailable("The log"));
    return () => {};
  }

  /** The lower-cased text of each line, for the filter. */
  /** @type {WeakMap<Element, string>} */
  const texts = new WeakMap();
  let following = true;
  let programmatic = false;
  let unseen = 0;

  const filter = /** @type {HTMLInputElement} */ (h("input", {
    type: "search",
    placeholder: "Filter lines (words)",
    "aria-label": "Filter lines",
    "data-testid": "logs-filter",
    class: "logs-filter",
    autocomplete: "off",
    oninput: () => applyFilter(),
  }));
  const level = /** @type {HTMLSelectElement} */ (h(
    "select",
    {
      "aria-label": "Lowest level shown",
      "data-testid": "logs-level",
      class: "logs-level",
      onchange: () => applyFilter(),
    },
    h("option", { value: "" }, "All levels"),
    h("option", { value: "info" }, "Info and above"),
    h("option", { value: "warn" }, "Warnings and errors"),
    h("option", { value: "error" }, "Errors only"),
  ));
  const followBtn = /** @type {HTMLButtonElement} */ (h("button", {
    type: "button",
    class: "small",
    "data-testid": "logs-follow",
    onclick: () => {
      if (following) setFollowing(false);
      else {
        setFollowing(true);
        toBottom();
      }
    },
  }));
  const status = h("p", { class: "muted small logs-status", "data-testid": "logs-status" });
  const empty = h(
    "p",
    { class: "note", "data-testid": "logs-empty" },
    "No log lines yet.",
  );
  const box = h("div", {
    class: "logs-lines",
    "data-testid": "logs-lines",
    role: "log",
    "aria-label": "Log lines",
    "aria-live": "off",
    tabindex: "0",
  });
  el.append(
    h(
      "div",
      { class: "toolbar logs-toolbar" },
      h("h1", null, "Logs"),
      filter,
      level,
      followBtn,
    ),
    status,
    empty,
    box,
  );

  /** @param {boolean} on */
  const setFollowing = (on) => {
    following = on;
    if (on) unseen = 0;
    box.dataset.following = String(on);
    followBtn.setAttribute("aria-pressed", String(on));
    followBtn.textContent = on
      ? "Following"
      : unseen
      ? `Jump to latest (${unseen} new)`
      : "Jump to latest";
    followBtn.classList.toggle("primary", !on && unseen > 0);
  };

  const toBottom = () => {
    programmatic = true;
    box.scrollTop = box.scrollHeight;
    requestAnimationFrame(() => {
      programmatic = false;
    });
  };

  box.addEventListener("scroll", () => {
    if (programmatic) return;
    const atBottom = box.scrollTop + box.clientHeight >= box.scrollHeight - 24;
    if (atBottom !== following) setFollowing(atBottom);
  });

  /** Whether a line passes the filters. @param {Element} line */
  const shown = (line) => {
    const min = RANK[level.value] ?? 0;
    const lv = RANK[/** @type {HTMLElement} */ (line).dataset.level ?? ""] ?? 0;
    if (min && lv && lv < min) return false;
    const words = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
    if (!words.length) return true;
    const t = texts.get(line) ?? "";
    return words.every((w) => t.includes(w));
  };

  const applyFilter = debounce(() => {
    for (const line of box.children) /** @type {HTMLElement} */ (line).hidden = !shown(line);
    if (following) toBottom();
  }, 80);

  /** @param {string[]} raws */
  const add = (raws) => {
    if (!raws.length) return;
    const frag = document.createDocumentFragment();
    for (const raw of raws.slice(-MAX_LINES)) {
      const p = parseLine(raw);
      const line = h(
        "div",
        {
          class: ["logs-line", p.level ? `logs-${p.level}` : ""],
          "data-testid": "log-line",
          dataset: { level: p.level },
        },
        h("span", { class: "logs-time", title: p.title }, p.time),
        p.level ? h("span", { class: "logs-lv" }, p.level) : null,
        h("span", { class: "logs-msg" }, p.message),
        p.fields ? h("span", { class: "logs-fields" }, p.fields) : null,
      );
      texts.set(line, raw.toLowerCase());
      line.hidden = !shown(line);
      frag.append(line);
    }
    box.append(frag);
    // Bounded: drop the oldest lines, keeping the view where it was when paused.
    const extra = box.children.length - MAX_LINES;
    if (extra > 0) {
      const before = box.scrollHeight;
      for (let i = 0; i < extra; i++) box.firstElementChild?.remove();
      if (!following) {
        programmatic = true;
        box.scrollTop -= before - box.scrollHeight;
        requestAnimationFrame(() => {
          programmatic = false;
        });
      }
    }
    empty.hidden = box.children.length > 0;
    if (following) toBottom();
    else {
      unseen += raws.length;
      setFollowing(false);
    }
  };

  /** @param {string} text */
  const marker = (text) => {
    const line = h("div", { class: "logs-line logs-marker", "data-testid": "log-marker" }, text);
    texts.set(line, "");
    box.append(line);
  };

  /** @type {number | undefined} */
  let cursor;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  let stopped = false;
  let failures = 0;

  const poll = async () => {
    timer = undefined;
    if (stopped) return;
    let next = POLL_MS;
    const first = cursor === undefined;
    try {
      const r = await app.request(
        "logs.tail",
        cursor === undefined ? { limit: 500 } : { cursor, limit: 1000 },
      );
      if (stopped) return;
      failures = 0;
      if (r.reset && cursor !== undefined) marker("— the log was rotated; reading the new file —");
      cursor = typeof r.cursor === "number" ? r.cursor : cursor;
      add(Array.isArray(r.lines) ? r.lines : []);
      status.textContent = `${r.file ? visible(r.file) : "gw.log"} · ${bytes(r.size ?? 0)}`;
      status.classList.remove("error");
      // After a cursor, `truncated` means more lines wait: read them at once.
      if (r.truncated && !first) next = 50;
    } catch (e) {
      if (stopped) return;
      failures++;
      status.textContent = `Could not read the log: ${/** @type {Error} */ (e).message}`;
      status.classList.add("error");
      next = Math.min(15_000, POLL_MS * 2 ** failures);
    }
    if (!stopped) timer = setTimeout(poll, document.hidden ? Math.max(next, 5000) : next);
  };

  const onVisible = () => {
    if (!document.hidden && timer !== undefined) {
      clearTimeout(timer);
      timer = setTimeout(poll, 0);
    }
  };
  document.addEventListener("visibilitychange", onVisible);
  setFollowing(true);
  void poll();

  return () => {
    stopped = true;
    clearTimeout(timer);
    applyFilter.cancel();
    document.removeEventListener("visibilitychange", onVisible);
  };
}

export default { id: "logs", title: "Logs", mount };
