/**
 * DOM helpers for the Control UI. Text always goes in through `textContent`
 * (text nodes), never `innerHTML`: data from the gateway cannot become markup.
 *
 * @module
 */

const SVG_NS = "http://www.w3.org/2000/svg";

/**
 * Set attributes, properties and listeners on `el`.
 * - `class`: a string, or an array (falsy entries dropped).
 * - `style`: an object of CSS properties (set through CSSOM, allowed by the CSP;
 *   a `style="..."` attribute would be blocked).
 * - `dataset`: an object of `data-*` values.
 * - `on<event>`: a function, added with addEventListener.
 * - `value`, `checked`, `disabled`, `selected`, `hidden`, `open`: set as properties.
 * - anything else: an attribute (`true` → empty attribute, `false`/null/undefined → none).
 * @param {Element} el
 * @param {Record<string, unknown>} [attrs]
 */
function applyAttrs(el, attrs) {
  if (!attrs) return;
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class" || k === "className") {
      const cls = Array.isArray(v) ? v.filter(Boolean).join(" ") : String(v);
      if (cls) el.setAttribute("class", cls);
    } else if (k === "style" && typeof v === "object") {
      for (const [p, val] of Object.entries(v)) {
        if (val === undefined || val === null) continue;
        if (p.startsWith("--")) /** @type {HTMLElement} */ (el).style.setProperty(p, String(val));
        /** @type {any} */ else el.style[p] = String(val);
      }
    } else if (k === "dataset" && typeof v === "object") {
      for (const [dk, dv] of Object.entries(v)) {
        if (dv !== undefined && dv !== null) {
          /** @type {HTMLElement} */ (el).dataset[dk] = String(dv);
        }
      }
    } else if (k.startsWith("on") && typeof v === "function") {
      el.addEventListener(k.slice(2).toLowerCase(), /** @type {EventListener} */ (v));
    } else if (
      ["value", "checked", "disabled", "selected", "hidden", "open", "indeterminate"].includes(k)
    ) {
      /** @type {any} */ (el)[k] = v;
    } else {
      el.setAttribute(k, v === true ? "" : String(v));
    }
  }
}

/**
 * Append children: strings and numbers as text nodes, Nodes as they are,
 * arrays flattened; null, undefined and false are skipped.
 * @param {Node} el
 * @param {unknown[]} children
 */
export function append(el, ...children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, ...c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
  return el;
}

/**
 * Create an HTML element.
 * @example h("button", { type: "button", onclick: () => go() }, "Go")
 * @param {string} tag
 * @param {Record<string, unknown> | null} [attrs]
 * @param {...unknown} children
 * @returns {HTMLElement}
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  applyAttrs(el, attrs ?? undefined);
  append(el, ...children);
  return el;
}

/**
 * Create an SVG element (for charts): `s("svg", { viewBox: "0 0 100 50" }, s("rect", {...}))`.
 * @param {string} tag
 * @param {Record<string, unknown> | null} [attrs]
 * @param {...unknown} children
 * @returns {SVGElement}
 */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  applyAttrs(el, attrs ?? undefined);
  append(el, ...children);
  return el;
}

/**
 * Remove every child of `el`, then append `children` (if any).
 * @param {Node} el
 * @param {...unknown} children
 */
export function clear(el, ...children) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return append(el, ...children);
}

/**
 * `root.querySelector(sel)`.
 * @param {string} sel
 * @param {ParentNode} [root]
 * @returns {HTMLElement | null}
 */
export function $(sel, root = document) {
  return root.querySelector(sel);
}

/**
 * A short note for a page whose methods this gateway does not advertise.
 * @param {string} what e.g. "Cron"
 * @returns {HTMLElement}
 */
export function notAvailable(what) {
  return h(
    "p",
    { class: "note", "data-testid": "not-available" },
    `${what} is not available on this gateway.`,
  );
}

/**
 * Call `fn` at most once per `ms`, after the calls stop.
 * @template {unknown[]} A
 * @param {(...args: A) => void} fn
 * @param {number} ms
 * @returns {((...args: A) => void) & { cancel(): void }}
 */
export function debounce(fn, ms) {
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let t;
  const d = /** @type {any} */ ((...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  });
  d.cancel = () => clearTimeout(t);
  return d;
}
