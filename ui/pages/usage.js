/**
 * Usage: tokens and cost by day and by model (`usage.cost`), as bar charts
 * drawn here in inline SVG (no library) and as tables. The charts are
 * `role="img"` with a label that says what they show; each bar has a
 * `<title>` with its numbers; the tables hold the same numbers for screen
 * readers and copying.
 *
 * DOM hooks (data-testid):
 * - `usage-days` (the range select), `usage-metric` (tokens / cost buttons,
 *   `aria-pressed`), `usage-totals`.
 * - `usage-chart` (the by-day SVG; bars are `rect[data-date]` with
 *   `data-value`), `usage-model-chart` (the by-model SVG; bars
 *   `rect[data-model]`).
 * - `usage-by-model`, `usage-by-day` (tables), `usage-empty` (nothing used).
 *
 * @module
 */
import { clear, debounce, h, notAvailable, s } from "../lib/dom.js";
import { cost, num, tokens } from "../lib/fmt.js";
import { visible } from "../lib/text.js";

/** @typedef {"tokens" | "cost"} Metric */

/** The token kinds of a stacked day bar, bottom first. */
const KINDS = /** @type {const} */ ([
  { key: "input", label: "input" },
  { key: "output", label: "output" },
  { key: "cache", label: "cache" },
]);

/**
 * "Mar 3" for a UTC day "2026-03-03".
 * @param {string} day
 * @param {boolean} [long]
 */
function dayLabel(day, long = false) {
  const d = new Date(`${day}T00:00:00Z`);
  if (Number.isNaN(d.getTime())) return day;
  return d.toLocaleDateString(undefined, {
    month: "short",
    day: "numeric",
    ...(long ? { weekday: "short", year: "numeric" } : {}),
    timeZone: "UTC",
  });
}

/**
 * A "nice" upper bound for an axis: 1, 2 or 5 times a power of ten, at least `max`.
 * @param {number} max
 */
function niceMax(max) {
  if (!(max > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(max));
  for (const m of [1, 2, 5, 10]) if (m * p >= max) return m * p;
  return 10 * p;
}

/**
 * @param {any} row
 * @param {Metric} metric
 */
const valueOf = (row, metric) =>
  metric === "cost" ? Number(row.totalCost) || 0 : Number(row.totalTokens) || 0;

/** @param {number} v @param {Metric} metric */
const fmtValue = (v, metric) => (metric === "cost" ? cost(v) : tokens(v));

/**
 * The by-day chart: one bar per day (stacked input / output / cache for
 * tokens), a y axis with three gridlines, and as many date labels as fit.
 * @param {any[]} daily
 * @param {Metric} metric
 * @param {number} width
 */
function dayChart(daily, metric, width) {
  const height = 220;
  const pad = { top: 12, right: 8, bottom: 26, left: 52 };
  const w = Math.max(120, width - pad.left - pad.right);
  const ih = height - pad.top - pad.bottom;
  const values = daily.map((d) => valueOf(d, metric));
  const top = niceMax(Math.max(0, ...values));
  const step = w / Math.max(1, daily.length);
  const barW = Math.max(2, Math.min(40, step * 0.7));
  const y = (/** @type {number} */ v) => pad.top + ih - (v / top) * ih;
  const total = values.reduce((a, b) => a + b, 0);
  const peak = daily[values.indexOf(Math.max(...values))];
  const what = metric === "cost" ? "Cost" : "Tokens";
  const label = total > 0
    ? `${what} by day over the last ${daily.length} days: ${fmtValue(total, metric)} in all, ` +
      `most on ${dayLabel(peak.date, true)} (${fmtValue(valueOf(peak, metric), metric)}).`
    : `${what} by day over the last ${daily.length} days: nothing used.`;
  const grid = [0, 0.5, 1].map((f) => {
    const v = top * f;
    return s(
      "g",
      { class: "usage-grid" },
      s("line", { x1: pad.left, x2: pad.left + w, y1: y(v), y2: y(v) }),
      s(
        "text",
        { x: pad.left - 6, y: y(v) + 4, "text-anchor": "end", class: "usage-axis" },
        fmtValue(v, metric),
      ),
    );
  });
  const every = Math.max(1, Math.ceil(daily.length / Math.max(1, Math.floor(w / 56))));
  const bars = daily.map((d, i) => {
    const x = pad.left + i * step + (step - barW) / 2;
    const v = values[i] ?? 0;
    const tip = metric === "cost"
      ? `${dayLabel(d.date, true)}: ${cost(v)} (${num(d.totalTokens)} tokens)`
      : `${dayLabel(d.date, true)}: ${num(v)} tokens (input ${num(d.input)}, output ${
        num(d.output)
      }, cache ${num((d.cacheRead ?? 0) + (d.cacheWrite ?? 0))}), ${cost(d.totalCost)}`;
    /** @type {SVGElement[]} */
    const parts = [];
    if (metric === "cost") {
      if (v > 0) {
        parts.push(
          s("rect", {
            class: "usage-bar usage-bar-cost",
            x,
            y: y(v),
            width: barW,
            height: Math.max(1, y(0) - y(v)),
            "data-date": d.date,
            "data-value": v,
          }, s("title", null, tip)),
        );
      }
    } else {
      let base = 0;
      for (const k of KINDS) {
        const part = k.key === "cache"
          ? (Number(d.cacheRead) || 0) + (Number(d.cacheWrite) || 0)
          : Number(d[k.key]) || 0;
        if (part <= 0) continue;
        const y0 = y(base);
        const y1 = y(base + part);
        parts.push(
          s("rect", {
            class: `usage-bar usage-bar-${k.key}`,
            x,
            y: y1,
            width: barW,
            height: Math.max(1, y0 - y1),
            "data-date": d.date,
            "data-kind": k.key,
            "data-value": part,
          }, s("title", null, tip)),
        );
        base += part;
      }
    }
    // A transparent full-height target so a tap anywhere in the column shows the numbers.
    parts.unshift(
      s("rect", {
        class: "usage-hit",
        x: pad.left + i * step,
        y: pad.top,
        width: step,
        height: ih,
      }, s("title", null, tip)),
    );
    const showLabel = i % every === (daily.length - 1) % every;
    // Labels near an edge are anchored to stay inside the chart.
    const cx = x + barW / 2;
    const anchor = cx + 28 > width ? "end" : cx - 28 < 0 ? "start" : "middle";
    const lx = anchor === "end" ? Math.min(width - 1, x + barW) : anchor === "start" ? x : cx;
    return s(
      "g",
      null,
      parts,
      showLabel
        ? s(
          "text",
          { x: lx, y: height - 8, "text-anchor": anchor, class: "usage-axis" },
          dayLabel(d.date),
        )
        : null,
    );
  });
  return s(
    "svg",
    {
      class: "usage-chart",
      "data-testid": "usage-chart",
      role: "img",
      "aria-label": label,
      width,
      height,
      viewBox: `0 0 ${width} ${height}`,
    },
    s("title", null, label),
    grid,
    bars,
  );
}

/**
 * The by-model chart: one horizontal bar per model, largest first.
 * @param {any[]} models
 * @param {Metric} metric
 * @param {number} width
 */
function modelChart(models, metric, width) {
  const rows = models.slice().sort((a, b) => valueOf(b, metric) - valueOf(a, metric)).slice(0, 12);
  const rowH = 30;
  const labelW = Math.min(200, Math.max(90, Math.floor(width * 0.35)));
  const valueW = 64;
  const height = Math.max(1, rows.length) * rowH + 8;
  const w = Math.max(40, width - labelW - valueW - 8);
  const top = Math.max(0, ...rows.map((m) => valueOf(m, metric))) || 1;
  const what = metric === "cost" ? "Cost" : "Tokens";
  const label = rows.length
    ? `${what} by model: ${
      rows.map((m) => `${visible(m.model)} ${fmtValue(valueOf(m, metric), metric)}`).join(", ")
    }.`
    : `${what} by model: nothing used.`;
  const maxChars = Math.max(6, Math.floor(labelW / 7.2));
  return s(
    "svg",
    {
      class: "usage-chart",
      "data-testid": "usage-model-chart",
      role: "img",
      "aria-label": label,
      width,
      height,
      viewBox: `0 0 ${width} ${height}`,
    },
    s("title", null, label),
    rows.map((m, i) => {
      const v = valueOf(m, metric);
      const name = visible(m.model);
      const short = name.length > maxChars ? `${name.slice(0, maxChars - 1)}…` : name;
      const yy = 4 + i * rowH;
      const bw = Math.max(v > 0 ? 2 : 0, (v / top) * w);
      return s(
        "g",
        null,
        s("text", { x: 0, y: yy + 19, class: "usage-label" }, s("title", null, name), short),
        s("rect", {
          class: "usage-bar usage-bar-model",
          x: labelW,
          y: yy + 5,
          width: bw,
          height: rowH - 10,
          rx: 3,
          "data-model": m.model,
          "data-value": v,
        }, s("title", null, `${name}: ${num(m.totalTokens)} tokens, ${cost(m.totalCost)}`)),
        s(
          "text",
          { x: labelW + bw + 6, y: yy + 19, class: "usage-axis" },
          fmtValue(v, metric),
        ),
      );
    }),
  );
}

/**
 * @param {string} testid
 * @param {string[]} heads
 * @param {unknown[][]} rows
 * @param {string} caption
 */
function table(testid, heads, rows, caption) {
  return h(
    "div",
    { class: "scroll-x" },
    h(
      "table",
      { class: "list usage-table", "data-testid": testid },
      h("caption", { class: "usage-caption" }, caption),
      h(
        "thead",
        null,
        h(
          "tr",
          null,
          heads.map((t, i) => h("th", { scope: "col", class: i ? "usage-num" : "" }, t)),
        ),
      ),
      h(
        "tbody",
        null,
        rows.map((r) =>
          h(
            "tr",
            null,
            r.map((c, i) => h(i ? "td" : "th", i ? { class: "usage-num" } : { scope: "row" }, c)),
          )
        ),
      ),
    ),
  );
}

/**
 * @param {HTMLElement} el
 * @param {any} app
 * @returns {() => void}
 */
function mount(el, app) {
  const methods = app.hello?.features?.methods ?? [];
  clear(el);
  if (!methods.includes("usage.cost")) {
    el.append(h("h1", null, "Usage"), notAvailable("Usage"));
    return () => {};
  }
  /** @type {Metric} */
  let metric = "tokens";
  let days = 30;
  /** @type {any} */
  let data = null;
  let drawnWidth = 0;

  const select = /** @type {HTMLSelectElement} */ (h(
    "select",
    {
      "data-testid": "usage-days",
      "aria-label": "Period",
      class: "usage-select",
      onchange: () => {
        days = Number(select.value) || 30;
        void load();
      },
    },
    [7, 14, 30, 90].map((d) =>
      h("option", { value: String(d), selected: d === days }, `Last ${d} days`)
    ),
  ));
  const metricBtns = /** @type {HTMLButtonElement[]} */ (["tokens", "cost"].map((m) =>
    h("button", {
      type: "button",
      class: "small",
      dataset: { metric: m },
      "aria-pressed": String(m === metric),
      onclick: () => {
        metric = /** @type {Metric} */ (m);
        for (const b of metricBtns) b.setAttribute("aria-pressed", String(b.dataset.metric === m));
        draw();
      },
    }, m === "tokens" ? "Tokens" : "Cost")
  ));
  const status = h("span", { class: "muted small", role: "status" });
  const totals = h("div", { class: "usage-totals", "data-testid": "usage-totals" });
  const dayBox = h("div", { class: "usage-chartbox" });
  const modelBox = h("div", { class: "usage-chartbox" });
  const legend = h("div", { class: "usage-legend", "aria-hidden": "true" });
  const tables = h("div", { class: "stack" });
  el.append(
    h(
      "div",
      { class: "toolbar" },
      h("h1", null, "Usage"),
      select,
      h("div", {
        class: "usage-metric",
        role: "group",
        "aria-label": "Show",
        "data-testid": "usage-metric",
      }, metricBtns),
      h("button", { type: "button", class: "small", onclick: () => void load() }, "Refresh"),
    ),
    status,
    totals,
    h("section", { class: "card usage-section" }, h("h2", null, "By day"), legend, dayBox),
    h("section", { class: "card usage-section" }, h("h2", null, "By model"), modelBox),
    tables,
  );

  const draw = () => {
    if (!data) return;
    drawnWidth = dayBox.clientWidth;
    const width = Math.max(240, Math.floor(dayBox.clientWidth || el.clientWidth - 40 || 600));
    const daily = Array.isArray(data.daily) ? data.daily : [];
    const models = Array.isArray(data.byModel) ? data.byModel : [];
    clear(dayBox, dayChart(daily, metric, width));
    clear(
      modelBox,
      models.length
        ? modelChart(models, metric, width)
        : h("p", { class: "muted" }, "No model was used in this period."),
    );
    clear(
      legend,
      metric === "tokens"
        ? KINDS.map((k) =>
          h("span", null, h("span", { class: `usage-swatch usage-bar-${k.key}` }), k.label)
        )
        : h("span", null, h("span", { class: "usage-swatch usage-bar-cost" }), "cost (USD)"),
    );
  };

  /** @param {any} r */
  const render = (r) => {
    data = r;
    const t = r.totals ?? {};
    const missing = Number(t.missingCostEntries) || 0;
    clear(
      totals,
      [
        ["Tokens", num(t.totalTokens)],
        ["Input", num(t.input)],
        ["Output", num(t.output)],
        ["Cache read / write", `${num(t.cacheRead)} / ${num(t.cacheWrite)}`],
        ["Cost", cost(t.totalCost)],
      ].map(([k, v]) =>
        h(
          "div",
          { class: "card usage-total" },
          h("div", { class: "muted small" }, k),
          h("strong", null, v),
        )
      ),
      missing
        ? h(
          "p",
          { class: "note usage-wide" },
          `${missing} ${missing === 1 ? "turn" : "turns"} used a model without a known price; ` +
            "their cost is not counted.",
        )
        : null,
      (Number(t.totalTokens) || 0) === 0
        ? h(
          "p",
          { class: "note usage-wide", "data-testid": "usage-empty" },
          `Nothing was used in the last ${
            r.days ?? days
          } days. Usage shows up here after a chat turn.`,
        )
        : null,
    );
    draw();
    const models = (Array.isArray(r.byModel) ? r.byModel : []).slice().sort(
      (/** @type {any} */ a, /** @type {any} */ b) => b.totalTokens - a.totalTokens,
    );
    const used = (Array.isArray(r.daily) ? r.daily : []).filter(
      (/** @type {any} */ d) => d.totalTokens > 0,
    ).reverse();
    clear(
      tables,
      h(
        "section",
        { class: "card usage-section" },
        table(
          "usage-by-model",
          ["Model", "Input", "Output", "Cache read", "Cache write", "Tokens", "Cost"],
          models.map((/** @type {any} */ m) => [
            visible(m.model),
            num(m.input),
            num(m.output),
            num(m.cacheRead),
            num(m.cacheWrite),
            num(m.totalTokens),
            cost(m.totalCost),
          ]),
          "Tokens and cost by model",
        ),
      ),
      h(
        "section",
        { class: "card usage-section" },
        table(
          "usage-by-day",
          ["Day (UTC)", "Input", "Output", "Cache", "Tokens", "Cost"],
          used.map((/** @type {any} */ d) => [
            dayLabel(d.date, true),
            num(d.input),
            num(d.output),
            num((d.cacheRead ?? 0) + (d.cacheWrite ?? 0)),
            num(d.totalTokens),
            cost(d.totalCost),
          ]),
          used.length ? "Days with usage, newest first" : "No day had any usage",
        ),
      ),
    );
  };

  let seq = 0;
  const load = async () => {
    const mine = ++seq;
    status.textContent = "Loading…";
    try {
      const r = await app.request("usage.cost", { days });
      if (mine !== seq) return;
      render(r);
      status.textContent = `Updated ${new Date().toLocaleTimeString()} · days are UTC`;
    } catch (e) {
      if (mine !== seq) return;
      status.textContent = `Could not read usage: ${/** @type {Error} */ (e).message}`;
    }
  };

  const redraw = debounce(() => {
    if (dayBox.clientWidth !== drawnWidth) draw();
  }, 150);
  const ro = new ResizeObserver(() => redraw());
  ro.observe(dayBox);
  // A chat turn ending changes the numbers.
  const off = app.on("chat", (/** @type {any} */ p) => {
    if (p?.state === "final") debouncedLoad();
  });
  const debouncedLoad = debounce(() => void load(), 1000);
  void load();
  return () => {
    ro.disconnect();
    redraw.cancel();
    debouncedLoad.cancel();
    off();
  };
}

export default { id: "usage", title: "Usage", mount };
