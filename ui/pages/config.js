/**
 * Config: a form generated from `config.schema` (the JSON Schema of gw.json)
 * over the file as `config.get` returns it (secrets redacted), saved with
 * `config.patch` (a JSON merge patch of the fields that changed) and the
 * `baseHash` of the last `config.get`.
 *
 * - Objects are fieldsets (the top-level ones collapsible sections), enums
 *   selects, booleans checkboxes, numbers and strings inputs, with the
 *   schema's description, default and limits as help text. Lists of values
 *   are one per line; lists of objects and maps (such as
 *   `models.providers`) get add and remove buttons.
 * - Secrets (`uiHints` sensitive, redacted as `__GW_REDACTED__` by config.get)
 *   are password fields that say "set — leave to keep": they are sent only
 *   when something is typed (or "Remove" is pressed).
 * - A conflict (`CONFIG_CONFLICT`: the file changed since it was read) shows
 *   what changed on the server, field by field, next to the person's own
 *   changes, and lets them reload (dropping their changes) or save their
 *   changes over the new file. Nothing is overwritten without asking.
 * - `CONFIG_INVALID` issues show next to their fields (and in a list on top).
 * - A raw JSON view edits the same draft (saved the same way).
 *
 * DOM hooks (data-testid):
 * - `config-status` (data-dirty="true|false", data-hash), `config-save`,
 *   `config-search` (shows only the fields whose path or help has the text),
 *   `config-discard`, `config-view-form`, `config-view-raw`, `config-form`.
 * - Sections `details.config-section[data-path=<top key>]`; every field is
 *   `.config-field[data-path=<dotted path>]` (data-secret="set|unset" for
 *   secrets) holding its control (`[name=<dotted path>]`) and, on an error,
 *   `config-field-error`. Secret fields have a `config-secret-remove` button.
 * - `config-add-item` / `config-remove-item` buttons in lists and maps
 *   (`config-new-key` is the new key's input of a map).
 * - `config-errors`: the issues of the last save; `config-restart`: settings
 *   that need a restart.
 * - `config-conflict`: rows `config-conflict-row` (data-path, data-side="server"|"mine",
 *   data-overlap="true" when both changed it), buttons `config-reload` and
 *   `config-overwrite`.
 * - `config-raw` (the JSON textarea), `config-raw-error`.
 *
 * @module
 */
import { clear, h, notAvailable } from "../lib/dom.js";

/** What config.get shows instead of a secret; sending it back keeps the secret. */
const REDACTED = "__GW_REDACTED__";

/** @param {unknown} v @returns {v is Record<string, any>} */
function isObj(v) {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** @param {unknown} v */
function clone(v) {
  return v === undefined ? undefined : JSON.parse(JSON.stringify(v));
}

/** @param {unknown} a @param {unknown} b */
function same(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * The value at `segs` (undefined when absent).
 * @param {unknown} root
 * @param {(string | number)[]} segs
 */
function getIn(root, segs) {
  let cur = /** @type {any} */ (root);
  for (const s of segs) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = cur[s];
  }
  return cur;
}

/**
 * Set (or with `undefined` delete) the value at `segs`, creating objects and
 * arrays on the way.
 * @param {Record<string, any>} root
 * @param {(string | number)[]} segs
 * @param {unknown} value
 */
function setIn(root, segs, value) {
  let cur = /** @type {any} */ (root);
  for (let i = 0; i < segs.length - 1; i++) {
    const s = /** @type {string | number} */ (segs[i]);
    if (cur[s] === null || typeof cur[s] !== "object") {
      if (value === undefined) return;
      cur[s] = typeof segs[i + 1] === "number" ? [] : {};
    }
    cur = cur[s];
  }
  const last = /** @type {string | number} */ (segs[segs.length - 1]);
  if (value === undefined) {
    if (Array.isArray(cur) && typeof last === "number") cur.splice(last, 1);
    else delete cur[last];
  } else cur[last] = value;
}

/**
 * The JSON merge patch (RFC 7386) that turns `a` into `b`, or undefined when
 * they are the same. Arrays are replaced whole; objects that would be added
 * empty are left out.
 * @param {unknown} a
 * @param {unknown} b
 * @returns {unknown}
 */
export function diffPatch(a, b) {
  if (isObj(b) && (isObj(a) || a === undefined)) {
    const from = isObj(a) ? a : {};
    /** @type {Record<string, unknown>} */
    const out = {};
    for (const k of new Set([...Object.keys(from), ...Object.keys(b)])) {
      if (b[k] === undefined) {
        if (from[k] !== undefined) out[k] = null;
        continue;
      }
      const d = diffPatch(from[k], b[k]);
      if (d !== undefined) out[k] = d;
    }
    return Object.keys(out).length ? out : undefined;
  }
  if (same(a, b)) return undefined;
  return clone(b);
}

/**
 * Every leaf of a config (scalars and whole arrays) by dotted path.
 * @param {unknown} v
 * @param {string} [prefix]
 * @param {Map<string, unknown>} [out]
 */
function leaves(v, prefix = "", out = new Map()) {
  if (isObj(v)) {
    for (const [k, x] of Object.entries(v)) leaves(x, prefix ? `${prefix}.${k}` : k, out);
  } else if (prefix) out.set(prefix, v);
  return out;
}

/**
 * The fields that differ between two configs.
 * @param {unknown} a
 * @param {unknown} b
 * @returns {{ path: string, before: unknown, after: unknown }[]}
 */
function changes(a, b) {
  const la = leaves(a);
  const lb = leaves(b);
  /** @type {{ path: string, before: unknown, after: unknown }[]} */
  const out = [];
  for (const p of new Set([...la.keys(), ...lb.keys()])) {
    if (!same(la.get(p), lb.get(p))) out.push({ path: p, before: la.get(p), after: lb.get(p) });
  }
  return out.sort((x, y) => x.path.localeCompare(y.path));
}

/**
 * A value as a person reads it in a diff (secrets never in clear).
 * @param {unknown} v
 */
function show(v) {
  if (v === undefined) return "(not set)";
  if (v === REDACTED) return "(secret, set)";
  if (typeof v === "string") return v;
  return JSON.stringify(v);
}

/**
 * The shape of a schema node, to pick its control.
 * @param {any} node
 * @returns {string}
 */
function kindOf(node) {
  if (!node || typeof node !== "object") return "json";
  if (Array.isArray(node.anyOf)) {
    const types = node.anyOf.map((/** @type {any} */ a) => a?.type);
    return types.every((/** @type {unknown} */ t) =>
        t === "string" || t === "integer" || t === "number" || t === "boolean"
      )
      ? "scalar-any"
      : "json";
  }
  switch (node.type) {
    case "object":
      if (node.properties) return "object";
      if (isObj(node.additionalProperties) && Object.keys(node.additionalProperties).length) {
        return "record";
      }
      return "json";
    case "array": {
      const it = kindOf(node.items);
      if (it === "object" || it === "record") return "array-objects";
      if (Array.isArray(node.items?.enum)) return "array-enum";
      if (["string", "integer", "number", "scalar-any", "enum"].includes(it)) return "array-scalar";
      return "json";
    }
    case "string":
      return Array.isArray(node.enum) ? "enum" : "string";
    case "boolean":
    case "integer":
    case "number":
      return node.type;
    default:
      return Array.isArray(node.enum) ? "enum" : "json";
  }
}

/**
 * Help text from a schema node: its description, default and limits.
 * @param {any} node
 */
function helpOf(node) {
  const parts = [];
  if (node?.description) parts.push(node.description);
  const facts = [];
  if (node?.default !== undefined && !isObj(node.default)) {
    facts.push(
      `default ${Array.isArray(node.default) ? JSON.stringify(node.default) : node.default}`,
    );
  }
  const min = node?.minimum ??
    (node?.exclusiveMinimum !== undefined ? `>${node.exclusiveMinimum}` : undefined);
  if (min !== undefined && node?.maximum !== undefined) facts.push(`${min}–${node.maximum}`);
  else if (min !== undefined) facts.push(`at least ${min}`);
  else if (node?.maximum !== undefined) facts.push(`at most ${node.maximum}`);
  if (node?.format === "uri") facts.push("a URL");
  return [...parts, facts.length ? `(${facts.join(", ")})` : ""].filter(Boolean).join(" ");
}

/**
 * @param {HTMLElement} el
 * @param {any} app
 * @returns {() => void}
 */
function mount(el, app) {
  const methods = app.hello?.features?.methods ?? [];
  clear(el, h("h1", null, "Config"));
  if (!methods.includes("config.get") || !methods.includes("config.schema")) {
    el.append(notAvailable("Config"));
    return () => {};
  }
  const canWrite = methods.includes("config.patch");

  /** @type {any} */
  let schema = null;
  /** @type {Record<string, any>} */
  let hints = {};
  /** @type {any} */
  let snap = null;
  /** The file as last read (redacted). @type {Record<string, any>} */
  let base = {};
  /** The person's edits. @type {Record<string, any>} */
  let draft = {};
  let hash = "";
  let view = "form";
  /** @type {Map<string, string>} */
  let fieldErrors = new Map();
  /** @type {{ path: string, message: string }[]} */
  let issues = [];
  let alive = true;
  let saving = false;
  /** Sections open in the form (kept across re-renders). @type {Set<string>} */
  const open = new Set();

  const status = h("p", { class: "muted small config-status", "data-testid": "config-status" });
  const saveBtn = h("button", {
    type: "button",
    class: "primary",
    "data-testid": "config-save",
    disabled: !canWrite,
    onclick: () => void save(),
  }, "Save");
  const discardBtn = h("button", {
    type: "button",
    "data-testid": "config-discard",
    onclick: () => void load(),
  }, "Discard changes");
  const formTab = h("button", {
    type: "button",
    class: "small",
    "data-testid": "config-view-form",
    "aria-pressed": "true",
    onclick: () => switchView("form"),
  }, "Form");
  const rawTab = h("button", {
    type: "button",
    class: "small",
    "data-testid": "config-view-raw",
    "aria-pressed": "false",
    onclick: () => switchView("raw"),
  }, "JSON");
  const notices = h("div", { class: "stack config-notices" });
  const search = /** @type {HTMLInputElement} */ (h("input", {
    type: "search",
    class: "config-search",
    "data-testid": "config-search",
    placeholder: "Find a setting (name or description)",
    "aria-label": "Find a setting",
    spellcheck: "false",
    autocapitalize: "off",
    oninput: () => applyFilter(),
  }));
  const body = h("div", { class: "config-body" });
  clear(
    el,
    h(
      "div",
      { class: "toolbar config-toolbar" },
      h("h1", null, "Config"),
      h("div", { class: "row config-tabs", role: "group", "aria-label": "View" }, formTab, rawTab),
      discardBtn,
      saveBtn,
    ),
    status,
    notices,
    search,
    body,
  );

  // ---------------------------------------------------------------- loading

  async function load() {
    try {
      const [sch, s] = await Promise.all([
        schema ? Promise.resolve(null) : app.request("config.schema", {}),
        app.request("config.get", {}),
      ]);
      if (!alive) return;
      if (sch) {
        schema = sch.schema;
        hints = sch.uiHints ?? {};
      }
      snap = s;
      base = isObj(s.parsed) ? s.parsed : {};
      draft = clone(base);
      hash = s.hash;
      fieldErrors = new Map();
      issues = [];
      clear(notices);
      render();
    } catch (e) {
      clear(body, h("p", { class: "error" }, /** @type {Error} */ (e).message));
    }
  }

  function dirtyCount() {
    const p = diffPatch(base, draft);
    return p === undefined ? 0 : leaves(p).size;
  }

  function updateStatus() {
    const n = dirtyCount();
    status.dataset.dirty = String(n > 0);
    status.dataset.hash = hash;
    clear(
      status,
      snap?.path ? h("code", null, snap.path) : "",
      snap && !snap.exists ? " (not written yet: defaults apply)" : "",
      " · ",
      n ? `${n} unsaved change${n === 1 ? "" : "s"}` : "no unsaved changes",
    );
    /** @type {HTMLButtonElement} */ (saveBtn).disabled = !canWrite || saving || n === 0;
    /** @type {HTMLButtonElement} */ (discardBtn).disabled = n === 0;
  }

  /** @param {string} v */
  function switchView(v) {
    if (v === view) return;
    if (view === "raw" && !readRaw()) return;
    view = v;
    formTab.setAttribute("aria-pressed", String(v === "form"));
    rawTab.setAttribute("aria-pressed", String(v === "raw"));
    render();
  }

  function render() {
    if (!schema) return;
    search.hidden = view === "raw";
    if (view === "raw") renderRaw();
    else renderForm();
    updateStatus();
  }

  /** Show only the fields whose path or help mentions the search text. */
  function applyFilter() {
    const q = search.value.trim().toLowerCase();
    const form = body.querySelector(".config-form");
    if (!form) return;
    for (const f of form.querySelectorAll(".config-field")) {
      const box = /** @type {HTMLElement} */ (f);
      const text = `${box.dataset.path ?? ""} ${
        box.querySelector(".config-help")?.textContent ?? ""
      }`;
      box.hidden = q !== "" && !text.toLowerCase().includes(q);
    }
    const visible = (/** @type {Element} */ e) => !!e.querySelector(".config-field:not([hidden])");
    // Innermost first, so a fieldset sees its children's state.
    for (const e of [...form.querySelectorAll("fieldset.config-object, .config-entry")].reverse()) {
      /** @type {HTMLElement} */ (e).hidden = q !== "" && !visible(e);
    }
    for (const d of form.querySelectorAll("details.config-section")) {
      const sec = /** @type {HTMLDetailsElement} */ (d);
      sec.hidden = q !== "" && !visible(sec);
      if (q && !sec.hidden) sec.open = true;
    }
  }

  // ---------------------------------------------------------------- raw view

  /** @type {HTMLTextAreaElement | null} */
  let rawArea = null;
  const rawErr = h("p", { class: "error", "data-testid": "config-raw-error", role: "alert" });

  function renderRaw() {
    rawArea = /** @type {HTMLTextAreaElement} */ (h("textarea", {
      class: "config-raw",
      "data-testid": "config-raw",
      spellcheck: "false",
      autocapitalize: "off",
      rows: "24",
      "aria-label": "gw.json",
      value: JSON.stringify(draft, null, 2) + "\n",
      oninput: () => {
        if (readRaw(true)) updateStatus();
      },
    }));
    clear(rawErr);
    clear(
      body,
      h(
        "p",
        { class: "muted small" },
        "The file as JSON. Secrets show as ",
        h("code", null, REDACTED),
        ": leave that text as it is to keep a secret, or type a new value.",
      ),
      rawArea,
      rawErr,
    );
  }

  /**
   * Take the raw text into the draft; false (and a message) when it is not a JSON object.
   * @param {boolean} [quiet]
   */
  function readRaw(quiet = false) {
    if (!rawArea) return true;
    try {
      const v = JSON.parse(rawArea.value);
      if (!isObj(v)) throw new Error("the file must be a JSON object ({ … })");
      draft = v;
      clear(rawErr);
      return true;
    } catch (e) {
      if (!quiet || rawArea.value.trim()) {
        clear(rawErr, `Not valid JSON: ${/** @type {Error} */ (e).message}`);
      }
      return false;
    }
  }

  // ---------------------------------------------------------------- form view

  /**
   * Whether the field at `hintPath` (record keys and indices as `*`) is a secret.
   * @param {string[]} hintSegs
   * @param {unknown} value
   */
  function sensitive(hintSegs, value) {
    return hints[hintSegs.join(".")]?.sensitive === true || value === REDACTED;
  }

  /** The element for a field's error message. @param {string} path */
  function errorFor(path) {
    const msg = fieldErrors.get(path);
    return h(
      "p",
      {
        class: "error small config-field-error",
        "data-testid": "config-field-error",
        role: "alert",
        hidden: !msg,
      },
      msg ?? "",
    );
  }

  /**
   * A field wrapper: label, control, help, error.
   * @param {string} path
   * @param {string} label
   * @param {Node} control
   * @param {any} node
   * @param {Record<string, unknown>} [extra]
   * @param {...unknown} more
   */
  function fieldBox(path, label, control, node, extra = {}, ...more) {
    const help = helpOf(node);
    return h(
      "div",
      {
        class: ["config-field", fieldErrors.has(path) && "config-invalid"],
        dataset: { path },
        ...extra,
      },
      h("label", { for: `cfg-${path}` }, label),
      control,
      ...more,
      help ? h("p", { class: "muted small config-help" }, help) : null,
      errorFor(path),
    );
  }

  /**
   * Mark the draft changed (no re-render).
   * @param {(string | number)[]} segs
   * @param {unknown} value
   */
  function change(segs, value) {
    setIn(draft, segs, value);
    const path = segs.join(".");
    if (fieldErrors.delete(path)) {
      const box = body.querySelector(`.config-field[data-path="${CSS.escape(path)}"]`);
      box?.classList.remove("config-invalid");
      const e = box?.querySelector(".config-field-error");
      if (e) /** @type {HTMLElement} */ (e).hidden = true;
    }
    updateStatus();
  }

  /**
   * The effective value of a field (from config.get's `config`), for placeholders.
   * @param {(string | number)[]} segs
   */
  function effective(segs) {
    return getIn(snap?.config, segs);
  }

  /**
   * Render a schema node at `segs`.
   * @param {any} node
   * @param {(string | number)[]} segs
   * @param {string[]} hintSegs
   * @param {string} label
   * @returns {Node}
   */
  function renderNode(node, segs, hintSegs, label) {
    const path = segs.join(".");
    const value = getIn(draft, segs);
    const kind = kindOf(node);
    const id = `cfg-${path}`;
    const eff = effective(segs);
    const placeholder =
      node?.default !== undefined && !isObj(node.default) && !Array.isArray(node.default)
        ? String(node.default)
        : eff !== undefined && !isObj(eff) && !Array.isArray(eff) && eff !== REDACTED
        ? String(eff)
        : "";
    switch (kind) {
      case "object": {
        const props = Object.entries(node.properties ?? {});
        return h(
          "fieldset",
          {
            class: ["config-object", fieldErrors.has(path) && "config-invalid"],
            dataset: { path },
          },
          h("legend", null, label),
          node.description ? h("p", { class: "muted small config-help" }, node.description) : null,
          errorFor(path),
          props.map(([k, child]) => renderNode(child, [...segs, k], [...hintSegs, k], k)),
        );
      }
      case "record":
        return renderRecord(node, segs, hintSegs, label);
      case "array-objects":
        return renderList(node, segs, hintSegs, label);
      case "boolean": {
        const checked = typeof value === "boolean" ? value : (eff ?? node.default) === true;
        return h(
          "div",
          {
            class: ["config-field", "config-bool", fieldErrors.has(path) && "config-invalid"],
            dataset: { path },
          },
          h(
            "label",
            { class: "check" },
            h("input", {
              type: "checkbox",
              id,
              name: path,
              checked,
              onchange: (/** @type {Event} */ ev) =>
                change(segs, /** @type {HTMLInputElement} */ (ev.target).checked),
            }),
            h("span", null, label),
          ),
          helpOf(node) ? h("p", { class: "muted small config-help" }, helpOf(node)) : null,
          errorFor(path),
        );
      }
      case "enum": {
        const def = node.default ?? eff;
        const sel = h(
          "select",
          {
            id,
            name: path,
            onchange: (/** @type {Event} */ ev) => {
              const v = /** @type {HTMLSelectElement} */ (ev.target).value;
              change(segs, v === "" ? undefined : v);
            },
          },
          h(
            "option",
            { value: "", selected: value === undefined },
            def !== undefined ? `(default: ${def})` : "(not set)",
          ),
          node.enum.map((/** @type {string} */ v) =>
            h("option", { value: v, selected: value === v }, v)
          ),
        );
        return fieldBox(path, label, sel, node);
      }
      case "integer":
      case "number": {
        const input = h("input", {
          type: "number",
          id,
          name: path,
          step: kind === "integer" ? "1" : "any",
          inputmode: kind === "integer" ? "numeric" : "decimal",
          value: value === undefined ? "" : String(value),
          placeholder,
          oninput: (/** @type {Event} */ ev) => {
            const t = /** @type {HTMLInputElement} */ (ev.target).value.trim();
            change(segs, t === "" ? undefined : Number.isFinite(Number(t)) ? Number(t) : t);
          },
        });
        return fieldBox(path, label, input, node);
      }
      case "string":
        if (sensitive(hintSegs, value)) return renderSecret(node, segs, label, value);
        return fieldBox(path, label, textControl(node, segs, value, placeholder, hintSegs), node);
      case "scalar-any":
        return fieldBox(path, label, textControl(node, segs, value, placeholder, hintSegs), node);
      case "array-scalar":
      case "array-enum":
        return renderScalarList(node, segs, label, value, kind);
      default:
        return renderJson(node, segs, label, value);
    }
  }

  /**
   * A text input (or a textarea for long text such as prompts).
   * @param {any} node
   * @param {(string | number)[]} segs
   * @param {unknown} value
   * @param {string} placeholder
   * @param {string[]} hintSegs
   */
  function textControl(node, segs, value, placeholder, hintSegs) {
    const path = segs.join(".");
    const long = (node.maxLength ?? 0) >= 10_000 ||
      /prompt|template/i.test(String(hintSegs.at(-1)));
    const anyOfInts = Array.isArray(node.anyOf) &&
      node.anyOf.some((/** @type {any} */ a) => a?.type === "integer" || a?.type === "number");
    return h(long ? "textarea" : "input", {
      ...(long ? { rows: "4" } : { type: node.format === "uri" ? "url" : "text" }),
      id: `cfg-${path}`,
      name: path,
      value: value === undefined ? "" : String(value),
      placeholder,
      spellcheck: long ? "true" : "false",
      autocapitalize: "off",
      oninput: (/** @type {Event} */ ev) => {
        const t = /** @type {HTMLInputElement} */ (ev.target).value;
        if (t === "") change(segs, undefined);
        else if (anyOfInts && /^-?\d+$/.test(t.trim())) change(segs, Number(t.trim()));
        else change(segs, t);
      },
    });
  }

  /**
   * A secret: a password field that never holds the secret; typing replaces it.
   * @param {any} node
   * @param {(string | number)[]} segs
   * @param {string} label
   * @param {unknown} value
   */
  function renderSecret(node, segs, label, value) {
    const path = segs.join(".");
    const stored = getIn(base, segs) === REDACTED;
    const typed = typeof value === "string" && value !== REDACTED ? value : "";
    const removed = stored && value === undefined;
    const input = /** @type {HTMLInputElement} */ (h("input", {
      type: "password",
      id: `cfg-${path}`,
      name: path,
      autocomplete: "new-password",
      spellcheck: "false",
      autocapitalize: "off",
      value: typed,
      placeholder: removed ? "will be removed on save" : stored ? "set — leave to keep" : "not set",
      oninput: () => {
        const t = input.value;
        // Empty means "keep" for a stored secret (the marker), "not set" otherwise.
        change(segs, t !== "" ? t : stored ? REDACTED : undefined);
        syncNote();
      },
    }));
    const note = h("span", { class: "muted small config-secret-state" });
    const removeBtn = h("button", {
      type: "button",
      class: "small ghost",
      "data-testid": "config-secret-remove",
      hidden: !stored,
      onclick: () => {
        const now = getIn(draft, segs);
        input.value = "";
        change(segs, now === undefined ? REDACTED : undefined);
        input.placeholder = now === undefined ? "set — leave to keep" : "will be removed on save";
        syncNote();
      },
    }, "Remove");
    function syncNote() {
      const v = getIn(draft, segs);
      clear(
        note,
        v === REDACTED
          ? "set (kept)"
          : v === undefined
          ? (stored ? "will be removed" : "not set")
          : "new value typed",
      );
      clear(removeBtn, v === undefined && stored ? "Keep" : "Remove");
    }
    syncNote();
    return fieldBox(
      path,
      label,
      h("div", { class: "row config-secret" }, input, removeBtn),
      node,
      { dataset: { path, secret: stored ? "set" : "unset" } },
      note,
    );
  }

  /**
   * A list of values: one per line, or checkboxes for a list of choices.
   * @param {any} node
   * @param {(string | number)[]} segs
   * @param {string} label
   * @param {unknown} value
   * @param {string} kind
   */
  function renderScalarList(node, segs, label, value, kind) {
    const path = segs.join(".");
    const list = Array.isArray(value) ? value : [];
    if (kind === "array-enum") {
      const boxes = node.items.enum.map((/** @type {string} */ opt) =>
        h(
          "label",
          { class: "check" },
          h("input", {
            type: "checkbox",
            name: path,
            value: opt,
            checked: list.includes(opt),
            onchange: () => {
              const picked = [...body.querySelectorAll(`input[name="${CSS.escape(path)}"]:checked`)]
                .map((x) => /** @type {HTMLInputElement} */ (x).value);
              change(segs, picked.length || Array.isArray(getIn(base, segs)) ? picked : undefined);
            },
          }),
          h("span", null, opt),
        )
      );
      return fieldBox(path, label, h("div", { class: "row", id: `cfg-${path}` }, boxes), node);
    }
    const items = node.items ?? {};
    const numeric = items.type === "integer" || items.type === "number" ||
      (Array.isArray(items.anyOf) &&
        items.anyOf.some((/** @type {any} */ a) => a?.type === "integer"));
    const area = h("textarea", {
      id: `cfg-${path}`,
      name: path,
      rows: String(Math.min(8, Math.max(2, list.length + 1))),
      spellcheck: "false",
      autocapitalize: "off",
      placeholder: "one per line",
      value: list.map(String).join("\n"),
      oninput: (/** @type {Event} */ ev) => {
        const lines = /** @type {HTMLTextAreaElement} */ (ev.target).value.split("\n").map((l) =>
          l.trim()
        )
          .filter(Boolean)
          .map((l) => (numeric && /^-?\d+(\.\d+)?$/.test(l) ? Number(l) : l));
        change(segs, lines.length || Array.isArray(getIn(base, segs)) ? lines : undefined);
      },
    });
    return fieldBox(path, label, area, {
      ...node,
      description: `${node.description ?? ""} One per line.`.trim(),
    });
  }

  /**
   * A JSON textarea for what the form cannot show field by field.
   * @param {any} node
   * @param {(string | number)[]} segs
   * @param {string} label
   * @param {unknown} value
   */
  function renderJson(node, segs, label, value) {
    const path = segs.join(".");
    const msg = h("p", { class: "error small" });
    const area = h("textarea", {
      id: `cfg-${path}`,
      name: path,
      rows: "4",
      class: "config-json",
      spellcheck: "false",
      value: value === undefined ? "" : JSON.stringify(value, null, 2),
      placeholder: "JSON",
      oninput: (/** @type {Event} */ ev) => {
        const t = /** @type {HTMLTextAreaElement} */ (ev.target).value.trim();
        if (!t) {
          clear(msg);
          return change(segs, undefined);
        }
        try {
          change(segs, JSON.parse(t));
          clear(msg);
        } catch {
          clear(msg, "Not valid JSON yet.");
        }
      },
    });
    return fieldBox(path, label, area, node, {}, msg);
  }

  /**
   * A map of named entries (such as models.providers): one fieldset per key.
   * @param {any} node
   * @param {(string | number)[]} segs
   * @param {string[]} hintSegs
   * @param {string} label
   */
  function renderRecord(node, segs, hintSegs, label) {
    const path = segs.join(".");
    const value = getIn(draft, segs);
    const entries = isObj(value) ? Object.keys(value) : [];
    const child = node.additionalProperties;
    const keyInput = /** @type {HTMLInputElement} */ (h("input", {
      type: "text",
      "data-testid": "config-new-key",
      placeholder: "name",
      "aria-label": `New ${label} entry`,
      spellcheck: "false",
      autocapitalize: "off",
    }));
    const keyErr = h("span", { class: "error small" });
    return h(
      "fieldset",
      {
        class: ["config-object", "config-record", fieldErrors.has(path) && "config-invalid"],
        dataset: { path },
      },
      h("legend", null, label),
      node.description ? h("p", { class: "muted small config-help" }, node.description) : null,
      errorFor(path),
      entries.length ? null : h("p", { class: "muted small" }, "None yet."),
      entries.map((k) =>
        h(
          "div",
          { class: "config-entry" },
          renderNode(child, [...segs, k], [...hintSegs, "*"], k),
          h("button", {
            type: "button",
            class: "small ghost",
            "data-testid": "config-remove-item",
            onclick: () => {
              change([...segs, k], undefined);
              renderForm();
            },
          }, `Remove ${k}`),
        )
      ),
      h(
        "div",
        { class: "row config-add" },
        keyInput,
        h("button", {
          type: "button",
          class: "small",
          "data-testid": "config-add-item",
          onclick: () => {
            const k = keyInput.value.trim();
            const pattern = node.propertyNames?.pattern;
            if (!k) return void clear(keyErr, "Type a name first.");
            if (pattern && !new RegExp(pattern).test(k)) {
              return void clear(keyErr, `"${k}" is not a valid name.`);
            }
            if (entries.includes(k)) return void clear(keyErr, `"${k}" is already there.`);
            change([...segs, k], {});
            open.add(String(segs[0]));
            renderForm();
          },
        }, "Add"),
        keyErr,
      ),
    );
  }

  /**
   * A list of objects (such as agents.list): one fieldset per item.
   * @param {any} node
   * @param {(string | number)[]} segs
   * @param {string[]} hintSegs
   * @param {string} label
   */
  function renderList(node, segs, hintSegs, label) {
    const path = segs.join(".");
    const value = getIn(draft, segs);
    const list = Array.isArray(value) ? value : [];
    return h(
      "fieldset",
      {
        class: ["config-object", "config-list", fieldErrors.has(path) && "config-invalid"],
        dataset: { path },
      },
      h("legend", null, label),
      node.description ? h("p", { class: "muted small config-help" }, node.description) : null,
      errorFor(path),
      list.length ? null : h("p", { class: "muted small" }, "None yet."),
      list.map((item, i) =>
        h(
          "div",
          { class: "config-entry" },
          renderNode(
            node.items,
            [...segs, i],
            [...hintSegs, "*"],
            `${label} ${i + 1}${item?.id ? `: ${item.id}` : item?.name ? `: ${item.name}` : ""}`,
          ),
          h("button", {
            type: "button",
            class: "small ghost",
            "data-testid": "config-remove-item",
            onclick: () => {
              const next = list.filter((_, j) => j !== i);
              change(segs, next.length || Array.isArray(getIn(base, segs)) ? next : undefined);
              renderForm();
            },
          }, "Remove"),
        )
      ),
      h(
        "div",
        { class: "row config-add" },
        h("button", {
          type: "button",
          class: "small",
          "data-testid": "config-add-item",
          onclick: () => {
            change(segs, [...list, {}]);
            open.add(String(segs[0]));
            renderForm();
          },
        }, `Add to ${label}`),
      ),
    );
  }

  function renderForm() {
    rawArea = null;
    const scrollY = globalThis.scrollY;
    const props = Object.entries(schema?.properties ?? {});
    const sections = props.filter(([, n]) => kindOf(n) === "object" || kindOf(n) === "record");
    const loose = props.filter(([, n]) => !sections.some(([, m]) => m === n));
    /** @param {string} key @param {string} title @param {any} desc @param {Node[]} content */
    const section = (key, title, desc, content) => {
      const hasError = [...fieldErrors.keys()].some((p) => p === key || p.startsWith(`${key}.`));
      const d = /** @type {HTMLDetailsElement} */ (h(
        "details",
        {
          class: ["card", "config-section", hasError && "config-invalid"],
          dataset: { path: key },
          open: open.has(key) || hasError,
        },
        h(
          "summary",
          null,
          h("strong", null, title),
          desc ? h("span", { class: "muted small" }, ` — ${desc}`) : null,
        ),
        h("div", { class: "stack config-section-body" }, content),
      ));
      d.addEventListener("toggle", () => {
        if (d.open) open.add(key);
        else open.delete(key);
      });
      return d;
    };
    const form = h(
      "form",
      {
        class: "stack config-form",
        "data-testid": "config-form",
        novalidate: true,
        onsubmit: (/** @type {Event} */ ev) => {
          ev.preventDefault();
          void save();
        },
      },
      sections.map(([k, n]) => {
        const kind = kindOf(n);
        const content = kind === "object"
          ? Object.entries(n.properties ?? {}).map(([ck, cn]) =>
            renderNode(cn, [k, ck], [k, ck], ck)
          )
          : [renderNode(n, [k], [k], k)];
        return section(k, k, n.description, [errorFor(k), ...content]);
      }),
      loose.length
        ? section("", "other", "", loose.map(([k, n]) => renderNode(n, [k], [k], k)))
        : null,
    );
    clear(body, form);
    applyFilter();
    globalThis.scrollTo?.(0, scrollY);
  }

  // ---------------------------------------------------------------- saving

  async function save(overBase = false) {
    if (saving || !canWrite) return;
    if (view === "raw" && !readRaw()) return;
    const patch = diffPatch(base, draft);
    if (patch === undefined) {
      app.toast("Nothing to save.", "info");
      return;
    }
    saving = true;
    updateStatus();
    try {
      const r = await app.request("config.patch", { patch, baseHash: hash });
      if (!alive) return;
      app.toast("Config saved.", "ok");
      const restart = Array.isArray(r.restartRequired) ? r.restartRequired : [];
      saving = false;
      await load();
      if (restart.length) {
        notices.append(h(
          "p",
          { class: "note config-restart", "data-testid": "config-restart" },
          `Saved. These settings take effect after a restart of gw: ${restart.join(", ")}.`,
        ));
      }
    } catch (e) {
      const err = /** @type {any} */ (e);
      saving = false;
      if (err.details?.code === "CONFIG_CONFLICT") {
        await conflict(/** @type {Record<string, unknown>} */ (patch), overBase);
      } else if (err.details?.code === "CONFIG_INVALID" && Array.isArray(err.details.issues)) {
        showIssues(err.details.issues, err.message);
      } else {
        clear(notices, h("p", { class: "error", role: "alert" }, err.message));
      }
      updateStatus();
    }
  }

  /**
   * Show the gateway's issues next to their fields and in a list.
   * @param {{ path: string, message: string }[]} list
   * @param {string} message
   */
  function showIssues(list, message) {
    issues = list;
    fieldErrors = new Map();
    for (const i of list) {
      const p = String(i.path ?? "");
      fieldErrors.set(p, fieldErrors.has(p) ? `${fieldErrors.get(p)}; ${i.message}` : i.message);
    }
    clear(
      notices,
      h(
        "div",
        { class: "note config-errors", "data-testid": "config-errors", role: "alert" },
        h("strong", { class: "error" }, "Not saved: the gateway found a problem."),
        h(
          "ul",
          null,
          issues.map((i) =>
            h(
              "li",
              null,
              h("button", {
                type: "button",
                class: "small ghost",
                onclick: () => focusField(i.path),
              }, h("code", null, i.path || "(the whole file)")),
              ` ${i.message}`,
            )
          ),
        ),
        issues.length ? null : h("p", null, message),
      ),
    );
    if (view === "form") {
      for (const p of fieldErrors.keys()) open.add(p.split(".")[0] ?? "");
      renderForm();
      focusField(issues[0]?.path ?? "");
    }
  }

  /** @param {string} path */
  function focusField(path) {
    if (view !== "form") return;
    let p = path;
    while (p) {
      const box = body.querySelector(`[data-path="${CSS.escape(p)}"]`);
      if (box) {
        const d = box.closest("details");
        if (d) d.open = true;
        box.scrollIntoView({ block: "center" });
        /** @type {HTMLElement | null} */ (box.querySelector("input, select, textarea"))?.focus({
          preventScroll: true,
        });
        return;
      }
      p = p.includes(".") ? p.slice(0, p.lastIndexOf(".")) : "";
    }
  }

  /**
   * The file changed since it was read: show what changed there and what the
   * person changed, and let them choose.
   * @param {Record<string, unknown>} patch
   * @param {boolean} again
   */
  async function conflict(patch, again) {
    let fresh;
    try {
      fresh = await app.request("config.get", {});
    } catch (e) {
      clear(notices, h("p", { class: "error" }, /** @type {Error} */ (e).message));
      return;
    }
    if (!alive) return;
    const theirs = changes(base, isObj(fresh.parsed) ? fresh.parsed : {});
    const mine = changes(base, draft);
    const theirPaths = new Set(theirs.map((c) => c.path));
    /** @param {string} p @param {Set<string>} set */
    const overlaps = (p, set) =>
      [...set].some((q) => q === p || q.startsWith(`${p}.`) || p.startsWith(`${q}.`));
    const minePaths = new Set(mine.map((c) => c.path));
    /** @param {{ path: string, before: unknown, after: unknown }} c @param {string} side */
    const row = (c, side) => {
      const overlap = overlaps(c.path, side === "server" ? minePaths : theirPaths);
      return h(
        "tr",
        {
          "data-testid": "config-conflict-row",
          dataset: { path: c.path, side, overlap: String(overlap) },
          class: overlap ? "config-overlap" : "",
        },
        h("td", null, h("code", null, c.path)),
        h("td", { class: "config-before" }, show(c.before)),
        h("td", { class: "config-after" }, show(c.after)),
      );
    };
    const table = (/** @type {typeof theirs} */ list, /** @type {string} */ side) =>
      h(
        "div",
        { class: "scroll-x" },
        h(
          "table",
          { class: "list config-diff" },
          h(
            "thead",
            null,
            h("tr", null, h("th", null, "Field"), h("th", null, "Was"), h("th", null, "Now")),
          ),
          h("tbody", null, list.map((c) => row(c, side))),
        ),
      );
    const secretNote = theirs.length === 0
      ? h(
        "p",
        { class: "small" },
        "No visible field differs: a secret (shown redacted) or the file's formatting changed.",
      )
      : null;
    clear(
      notices,
      h(
        "section",
        { class: "card config-conflict", "data-testid": "config-conflict", role: "alert" },
        h("h2", null, "The config changed on the gateway since you opened it"),
        h(
          "p",
          { class: "small" },
          again
            ? "It changed again. Nothing of yours was saved."
            : "Someone (or something) saved it after this page read it. Nothing of yours was saved.",
        ),
        h("h3", null, "Changed on the gateway"),
        theirs.length ? table(theirs, "server") : null,
        secretNote,
        h("h3", null, "Your changes"),
        table(mine, "mine"),
        theirs.some((c) => overlaps(c.path, minePaths))
          ? h(
            "p",
            { class: "small error" },
            "Highlighted fields were changed on both sides: saving yours replaces theirs.",
          )
          : null,
        h(
          "div",
          { class: "row" },
          h("button", {
            type: "button",
            "data-testid": "config-reload",
            onclick: () => void load(),
          }, "Reload (drop my changes)"),
          h("button", {
            type: "button",
            class: "danger",
            "data-testid": "config-overwrite",
            onclick: () => {
              // Rebase: their file plus my changes, then save against their hash.
              const merged = mergeInto(isObj(fresh.parsed) ? fresh.parsed : {}, patch);
              snap = fresh;
              base = isObj(fresh.parsed) ? fresh.parsed : {};
              draft = /** @type {Record<string, any>} */ (merged);
              hash = fresh.hash;
              clear(notices);
              render();
              void save(true);
            },
          }, "Save mine over theirs"),
        ),
      ),
    );
    notices.scrollIntoView({ block: "start" });
  }

  /**
   * Apply a merge patch to a copy of `target`.
   * @param {unknown} target
   * @param {unknown} patch
   * @returns {unknown}
   */
  function mergeInto(target, patch) {
    if (!isObj(patch)) return clone(patch);
    /** @type {Record<string, unknown>} */
    const out = isObj(target) ? clone(target) : {};
    for (const [k, v] of Object.entries(patch)) {
      if (v === null) delete out[k];
      else out[k] = mergeInto(out[k], v);
    }
    return out;
  }

  // Leaving with unsaved changes: the browser asks (tab close / reload).
  /** @param {BeforeUnloadEvent} ev */
  const beforeUnload = (ev) => {
    if (dirtyCount() > 0) ev.preventDefault();
  };
  globalThis.addEventListener("beforeunload", beforeUnload);

  void load();

  return () => {
    alive = false;
    globalThis.removeEventListener("beforeunload", beforeUnload);
  };
}

export default { id: "config", title: "Config", mount };
