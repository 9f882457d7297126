/**
 * Approvals: live `exec.approval.requested` cards with allow once / allow
 * always / deny (`exec.approval.resolve`). A card goes away on
 * `exec.approval.resolved`, whoever decided.
 *
 * The command is the gateway's display text (NFKC-normalised, invisible and
 * bidi characters already escaped), shown as text only, in monospace, with
 * the gateway's warnings. Other strings of a request (cwd, host, session) are
 * escaped here the same way before they are shown.
 *
 * The gateway has no method that lists pending requests, so requests made
 * before this page opened are not shown (the page says so).
 *
 * DOM hooks (data-testid):
 * - `approvals-list`: the cards; `approvals-empty`: the empty note.
 * - `approval-card` (with `data-id`): one request; inside it `approval-command`
 *   (the command text), `approval-warnings` (a list, when any) and buttons
 *   `data-decision="allow-once" | "allow-always" | "deny"`.
 * - `approvals-note`: the note about earlier requests.
 *
 * @module
 */
import { clear, h, notAvailable } from "../lib/dom.js";
import { duration, relative, time } from "../lib/fmt.js";
import { shortId, visible } from "../lib/text.js";

/** @type {{ decision: string, label: string, kind: string, title: string }[]} */
const DECISIONS = [
  {
    decision: "allow-once",
    label: "Allow once",
    kind: "primary",
    title: "Run this command this one time",
  },
  {
    decision: "allow-always",
    label: "Allow always",
    kind: "",
    title: "Run it now and add exactly this binary and these arguments to the allowlist",
  },
  { decision: "deny", label: "Deny", kind: "danger", title: "Do not run this command" },
];

const WORDS = /** @type {Record<string, string>} */ ({
  "allow-once": "allowed once",
  "allow-always": "allowed always",
  "deny": "denied",
});

/**
 * @param {HTMLElement} el
 * @param {any} app
 * @returns {() => void}
 */
function mount(el, app) {
  const methods = app.hello?.features?.methods ?? [];
  clear(el, h("h1", null, "Approvals"));
  if (!methods.includes("exec.approval.resolve")) {
    el.append(notAvailable("Exec approvals"));
    return () => {};
  }
  const list = h("div", { class: "approvals-list", "data-testid": "approvals-list" });
  const empty = h(
    "p",
    { class: "approvals-empty note", "data-testid": "approvals-empty" },
    "No commands are waiting for approval. New requests show up here as they come.",
  );
  const note = h(
    "p",
    { class: "approvals-note muted", "data-testid": "approvals-note" },
    "Requests made before this page opened are not shown.",
  );
  el.append(
    h(
      "p",
      { class: "muted" },
      "An agent or a node asks before it runs a command its policy does not allow yet.",
    ),
    list,
    empty,
    note,
  );

  /** Node display names by id, from node.list. @type {Map<string, string>} */
  const nodeNames = new Map();
  const loadNodeNames = async () => {
    if (!methods.includes("node.list")) return;
    try {
      const r = await app.request("node.list", {});
      for (const n of r?.nodes ?? []) if (n.displayName) nodeNames.set(n.nodeId, n.displayName);
    } catch { /* the id is shown instead */ }
  };
  /** @param {any} req */
  const whereText = (req) =>
    req.nodeId
      ? `node ${visible(nodeNames.get(req.nodeId) ?? shortId(req.nodeId))}`
      : req.host === "gateway" || !req.host
      ? "the gateway host"
      : visible(req.host);

  /** @type {Map<string, { card: HTMLElement, req: any, expires: HTMLElement }>} */
  const cards = new Map();

  const sync = () => {
    empty.hidden = cards.size > 0;
  };

  /** @param {string} id */
  const remove = (id) => {
    const c = cards.get(id);
    if (!c) return;
    c.card.remove();
    cards.delete(id);
    sync();
  };

  /** @param {HTMLElement} exp @param {any} req */
  const tickExpiry = (exp, req) => {
    const left = Number(req.expiresAtMs) - Date.now();
    exp.textContent = Number.isFinite(left)
      ? left > 0 ? `expires ${relative(req.expiresAtMs)}` : "expired"
      : "";
    if (Number.isFinite(left)) exp.title = `Until ${time(req.expiresAtMs)}`;
  };

  /** @param {any} req */
  const add = (req) => {
    if (!req || typeof req.id !== "string" || cards.has(req.id) || req.decision) return;
    const r = req.request ?? {};
    const warnings = Array.isArray(req.warnings) ? req.warnings : [];
    const buttons = DECISIONS.map((d) =>
      h("button", {
        type: "button",
        class: ["approvals-btn", d.kind],
        dataset: { decision: d.decision },
        title: d.title,
        onclick: () => decide(req.id, d.decision),
      }, d.label)
    );
    const where = h("span", { title: req.nodeId ? visible(req.nodeId) : "" }, whereText(req));
    if (req.nodeId && !nodeNames.has(req.nodeId)) {
      void loadNodeNames().then(() => {
        where.textContent = whereText(req);
      });
    }
    const expires = h("span", { class: "approvals-expires" });
    tickExpiry(expires, req);
    const envKeys = Array.isArray(r.envKeys) ? r.envKeys : [];
    const card = h(
      "article",
      {
        class: ["card", "approvals-card", warnings.length ? "approvals-warn" : ""],
        "data-testid": "approval-card",
        dataset: { id: req.id },
        "aria-label": "Command waiting for approval",
      },
      h(
        "header",
        { class: "approvals-head" },
        h("strong", null, "Run on ", where),
        h(
          "span",
          { class: "muted" },
          ` · agent ${visible(req.agentId ?? "main")} · asked ${relative(req.createdAtMs)} · `,
        ),
        expires,
      ),
      h(
        "pre",
        { class: "approvals-cmd approvals-mono", "data-testid": "approval-command" },
        h("code", null, String(r.command ?? "")),
      ),
      warnings.length
        ? h(
          "div",
          { class: "approvals-warnings", role: "alert" },
          h("strong", null, "Look closely: this command contains characters that can mislead."),
          h(
            "ul",
            { "data-testid": "approval-warnings" },
            warnings.map((w) => h("li", null, visible(w))),
          ),
        )
        : null,
      h(
        "dl",
        { class: "approvals-meta" },
        r.binary
          ? [h("dt", null, "Program"), h("dd", { class: "approvals-mono" }, visible(r.binary))]
          : null,
        r.cwd
          ? [h("dt", null, "Directory"), h("dd", { class: "approvals-mono" }, visible(r.cwd))]
          : null,
        envKeys.length
          ? [
            h("dt", null, "Environment"),
            h("dd", { class: "approvals-mono" }, envKeys.map(visible).join(", ")),
          ]
          : null,
        req.sessionKey
          ? [
            h("dt", null, "Session"),
            h("dd", { class: "approvals-mono" }, visible(req.sessionKey)),
          ]
          : null,
      ),
      h("div", { class: "approvals-actions row" }, buttons),
    );
    cards.set(req.id, { card, req, expires });
    list.prepend(card);
    sync();
  };

  /** @param {string} id @param {string} decision */
  const decide = async (id, decision) => {
    const c = cards.get(id);
    if (!c) return;
    const btns = [...c.card.querySelectorAll("button")];
    for (const b of btns) /** @type {HTMLButtonElement} */ (b).disabled = true;
    c.card.setAttribute("aria-busy", "true");
    try {
      await app.request("exec.approval.resolve", { id, decision });
      remove(id);
      app.toast(`Command ${WORDS[decision] ?? decision}.`, decision === "deny" ? "info" : "ok");
    } catch (e) {
      const err = /** @type {any} */ (e);
      if (err?.details?.code === "APPROVAL_NOT_FOUND") {
        remove(id);
        app.toast("That request was already decided or has expired.", "info");
        return;
      }
      for (const b of btns) /** @type {HTMLButtonElement} */ (b).disabled = false;
      c.card.removeAttribute("aria-busy");
      app.toast(`Could not answer the request: ${err?.message ?? err}`, "error");
    }
  };

  const offs = [
    app.on("exec.approval.requested", add),
    app.on("exec.approval.resolved", (/** @type {any} */ p) => {
      if (!p || !cards.has(p.id)) return;
      const c = cards.get(p.id);
      const busy = c?.card.getAttribute("aria-busy") === "true";
      remove(p.id);
      if (!busy) {
        const by = p.decidedBy ? ` by ${visible(p.decidedBy)}` : "";
        app.toast(`A request was ${WORDS[p.decision] ?? p.decision}${by}.`, "info");
      }
    }),
  ];
  // Expiry labels count down; a request past its time is decided by the
  // gateway's fallback, which sends exec.approval.resolved.
  const timer = setInterval(() => {
    for (const c of cards.values()) tickExpiry(c.expires, c.req);
  }, 15_000);
  sync();
  void loadNodeNames();
  note.title = `Requests wait up to ${duration(30 * 60_000)} by default.`;

  return () => {
    clearInterval(timer);
    for (const off of offs) off();
  };
}

export default { id: "approvals", title: "Approvals", mount };
