/**
 * Devices and nodes: pending pairing requests to approve or reject
 * (`device.pair.*`, `node.pair.*` for node requests), paired devices with
 * their tokens to revoke (`device.token.revoke`) or the whole device to
 * remove (`device.pair.remove`), and the nodes (`node.list`). Updates live
 * on the pairing events; node connections are refreshed every 10 s.
 *
 * DOM hooks (data-testid):
 * - `pair-pending` (list), `pair-request` (one request, `data-request-id`,
 *   `data-role`) with buttons `data-action="approve" | "reject"`;
 *   `pair-pending-empty` when none.
 * - `devices-paired` (list), `device` (one device, `data-device-id`) with
 *   buttons `data-action="revoke"` (`data-role`) and `data-action="remove"`;
 *   a destructive button asks once more: its label becomes "Confirm …" and a
 *   second click within 5 s does it.
 * - `nodes` (list), `node` (one node, `data-node-id`, `data-connected`).
 *
 * @module
 */
import { clear, h, notAvailable } from "../lib/dom.js";
import { dateTime, relative } from "../lib/fmt.js";
import { shortId, visible } from "../lib/text.js";

/**
 * A two-step button: the first click arms it ("Confirm …"), a second click
 * within 5 s runs `fn`.
 * @param {string} label
 * @param {Record<string, unknown>} attrs
 * @param {() => Promise<void>} fn
 */
function confirmButton(label, attrs, fn) {
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let armed;
  const b = /** @type {HTMLButtonElement} */ (h("button", {
    type: "button",
    ...attrs,
    onclick: async () => {
      if (!armed) {
        b.textContent = `Confirm: ${label.toLowerCase()}`;
        b.classList.add("devices-armed");
        armed = setTimeout(() => {
          armed = undefined;
          b.textContent = label;
          b.classList.remove("devices-armed");
        }, 5000);
        return;
      }
      clearTimeout(armed);
      armed = undefined;
      b.disabled = true;
      try {
        await fn();
      } finally {
        b.disabled = false;
        b.textContent = label;
        b.classList.remove("devices-armed");
      }
    },
  }, label));
  return b;
}

/** @param {unknown[] | undefined} list */
const joined = (list) => (Array.isArray(list) && list.length ? list.map(visible).join(", ") : "—");

/**
 * @param {HTMLElement} el
 * @param {any} app
 * @returns {() => void}
 */
function mount(el, app) {
  const methods = app.hello?.features?.methods ?? [];
  const has = (/** @type {string} */ m) => methods.includes(m);
  clear(el, h("h1", null, "Devices and nodes"));
  if (!has("device.pair.list") && !has("node.list")) {
    el.append(notAvailable("Device pairing"));
    return () => {};
  }
  const myDevice = app.hello?.auth?.deviceId;

  const pending = h("div", { class: "devices-list", "data-testid": "pair-pending" });
  const paired = h("div", { class: "devices-list", "data-testid": "devices-paired" });
  const nodes = h("div", { class: "devices-list", "data-testid": "nodes" });
  const status = h("p", { class: "muted", role: "status" });
  const refresh = h("button", { type: "button", onclick: () => load() }, "Refresh");
  el.append(
    h("div", { class: "toolbar devices-toolbar" }, refresh, status),
    h("section", { class: "devices-section" }, h("h2", null, "Waiting for approval"), pending),
    h("section", { class: "devices-section" }, h("h2", null, "Paired devices"), paired),
    h("section", { class: "devices-section" }, h("h2", null, "Nodes"), nodes),
  );

  /**
   * Run a call, toast the outcome, reload.
   * @param {string} method @param {Record<string, unknown>} params @param {string} done
   */
  const act = async (method, params, done) => {
    try {
      await app.request(method, params);
      app.toast(done, "ok");
    } catch (e) {
      app.toast(/** @type {Error} */ (e).message, "error");
    }
    await load();
  };

  /** @param {any} r */
  const requestRow = (r) => {
    const node = r.role === "node";
    const ns = node && has("node.pair.approve") ? "node" : "device";
    const name = visible(r.displayName || r.clientId || r.deviceId);
    const expired = Number(r.expiresAtMs) <= Date.now();
    return h(
      "article",
      {
        class: "card devices-card",
        "data-testid": "pair-request",
        dataset: { requestId: r.requestId, role: r.role },
      },
      h(
        "header",
        { class: "devices-head" },
        h("strong", null, name),
        h("span", { class: "badge" }, node ? "node" : r.role ?? "operator"),
        r.reason === "scope-upgrade"
          ? h("span", { class: "badge warn" }, "asks for more access")
          : h("span", { class: "badge" }, "new device"),
      ),
      h(
        "dl",
        { class: "devices-meta" },
        h("dt", null, "Device"),
        h(
          "dd",
          { class: "devices-mono devices-id", title: visible(r.deviceId) },
          shortId(r.deviceId),
        ),
        h("dt", null, "From"),
        h("dd", null, `${visible(r.remoteIp)} · ${visible(r.platform ?? "unknown platform")}`),
        node
          ? [h("dt", null, "Commands"), h("dd", { class: "devices-mono" }, joined(r.commands))]
          : [h("dt", null, "Access"), h("dd", { class: "devices-mono" }, joined(r.scopes))],
        h("dt", null, "Asked"),
        h(
          "dd",
          { title: dateTime(r.createdAtMs) },
          `${relative(r.createdAtMs)} · ${
            expired ? "expired" : `expires ${relative(r.expiresAtMs)}`
          }`,
        ),
      ),
      h(
        "div",
        { class: "row devices-actions" },
        h("button", {
          type: "button",
          class: "primary",
          dataset: { action: "approve" },
          onclick: () =>
            act(`${ns}.pair.approve`, { requestId: r.requestId }, `${name} is paired.`),
        }, "Approve"),
        h("button", {
          type: "button",
          class: "danger",
          dataset: { action: "reject" },
          onclick: () =>
            act(`${ns}.pair.reject`, { requestId: r.requestId }, `${name} was rejected.`),
        }, "Reject"),
      ),
    );
  };

  /** @param {any} d */
  const deviceRow = (d) => {
    const name = visible(d.displayName || d.clientId || d.deviceId);
    const self = myDevice && d.deviceId === myDevice;
    const tokens = Array.isArray(d.tokens) ? d.tokens : [];
    return h(
      "article",
      { class: "card devices-card", "data-testid": "device", dataset: { deviceId: d.deviceId } },
      h(
        "header",
        { class: "devices-head" },
        h("strong", null, name),
        (d.roles ?? []).map((/** @type {string} */ r) => h("span", { class: "badge" }, r)),
        self ? h("span", { class: "badge ok" }, "this browser") : null,
      ),
      h(
        "dl",
        { class: "devices-meta" },
        h("dt", null, "Device"),
        h(
          "dd",
          { class: "devices-mono devices-id", title: visible(d.deviceId) },
          shortId(d.deviceId),
        ),
        h("dt", null, "Platform"),
        h("dd", null, visible(d.platform || "—")),
        h("dt", null, "Access"),
        h("dd", { class: "devices-mono" }, joined(d.scopes)),
        h("dt", null, "Last seen"),
        h(
          "dd",
          { title: dateTime(d.lastSeenAtMs) },
          d.lastSeenAtMs
            ? `${relative(d.lastSeenAtMs)}${d.lastSeenIp ? ` from ${visible(d.lastSeenIp)}` : ""}`
            : "never",
        ),
        h("dt", null, "Approved"),
        h(
          "dd",
          { title: dateTime(d.approvedAtMs) },
          `${relative(d.approvedAtMs)} by ${visible(d.approvedBy)}`,
        ),
        h("dt", null, "Tokens"),
        h(
          "dd",
          null,
          tokens.length
            ? tokens.map((/** @type {any} */ t) =>
              h(
                "span",
                { class: ["badge", t.revokedAtMs ? "err" : ""] },
                `${visible(t.role)}${t.revokedAtMs ? " (revoked)" : ""}`,
              )
            )
            : "none",
        ),
      ),
      h(
        "div",
        { class: "row devices-actions" },
        tokens.filter((/** @type {any} */ t) => !t.revokedAtMs).map((/** @type {any} */ t) =>
          confirmButton(
            `Revoke ${t.role} token`,
            { dataset: { action: "revoke", role: t.role } },
            () =>
              act(
                "device.token.revoke",
                { deviceId: d.deviceId, role: t.role },
                `The ${t.role} token of ${name} was revoked.`,
              ),
          )
        ),
        confirmButton(
          "Remove",
          { class: "danger", dataset: { action: "remove" } },
          () => act("device.pair.remove", { deviceId: d.deviceId }, `${name} was removed.`),
        ),
      ),
      self
        ? h(
          "p",
          { class: "muted" },
          "Revoking or removing this browser signs this page out.",
        )
        : null,
    );
  };

  /** @param {any} n */
  const nodeRow = (n) =>
    h(
      "article",
      {
        class: "card devices-card",
        "data-testid": "node",
        dataset: { nodeId: n.nodeId, connected: String(Boolean(n.connected)) },
      },
      h(
        "header",
        { class: "devices-head" },
        h("strong", null, visible(n.displayName || n.nodeId)),
        h(
          "span",
          { class: ["badge", n.connected ? "ok" : ""] },
          n.connected ? "connected" : "offline",
        ),
      ),
      h(
        "dl",
        { class: "devices-meta" },
        h("dt", null, "Node"),
        h("dd", { class: "devices-mono devices-id", title: visible(n.nodeId) }, shortId(n.nodeId)),
        h("dt", null, "Platform"),
        h("dd", null, visible(n.platform || "—")),
        h("dt", null, "Commands"),
        h("dd", { class: "devices-mono" }, joined(n.commands)),
        h("dt", null, n.connected ? "Connected" : "Last seen"),
        h(
          "dd",
          null,
          n.connected
            ? `${relative(n.connectedAtMs)}${n.remoteIp ? ` from ${visible(n.remoteIp)}` : ""}`
            : n.lastSeenAtMs
            ? relative(n.lastSeenAtMs)
            : "never",
        ),
      ),
    );

  /** @param {HTMLElement} box @param {unknown[]} items @param {(x: any) => Node} row @param {string} none @param {string} id */
  const fill = (box, items, row, none, id) => {
    clear(
      box,
      items.length ? items.map(row) : h("p", { class: "note", "data-testid": id }, none),
    );
  };

  /**
   * A loader that never runs twice at once: a call while it runs asks for one more run after.
   * @param {() => Promise<string | null>} fn resolves to an error message, or null
   */
  const serial = (fn) => {
    let running = false;
    let again = false;
    /** @type {string | null} */
    let lastError = null;
    const run = async () => {
      if (running) {
        again = true;
        return;
      }
      running = true;
      try {
        lastError = await fn();
        errors.set(fn, lastError);
        showStatus();
      } finally {
        running = false;
        if (again) {
          again = false;
          void run();
        }
      }
    };
    return run;
  };
  /** @type {Map<Function, string | null>} */
  const errors = new Map();
  const showStatus = () => {
    const bad = [...errors.values()].filter(Boolean);
    status.textContent = bad.length
      ? `Could not load everything: ${bad.join("; ")}`
      : `Updated ${new Date().toLocaleTimeString()}`;
    status.classList.toggle("error", bad.length > 0);
  };

  const loadPairing = serial(async () => {
    if (!has("device.pair.list")) {
      clear(pending, notAvailable("Device pairing"));
      clear(paired);
      return null;
    }
    try {
      const r = await app.request("device.pair.list", {});
      const reqs = (r.pending ?? []).slice().sort((/** @type {any} */ a, /** @type {any} */ b) =>
        b.createdAtMs - a.createdAtMs
      );
      fill(pending, reqs, requestRow, "No device is waiting.", "pair-pending-empty");
      fill(paired, r.paired ?? [], deviceRow, "No paired devices yet.", "devices-none");
      return null;
    } catch (e) {
      return /** @type {Error} */ (e).message;
    }
  });

  const loadNodes = serial(async () => {
    if (!has("node.list")) {
      clear(nodes, notAvailable("Nodes"));
      return null;
    }
    try {
      const r = await app.request("node.list", {});
      const list = (r.nodes ?? []).slice().sort((/** @type {any} */ a, /** @type {any} */ b) =>
        Number(b.connected) - Number(a.connected)
      );
      fill(
        nodes,
        list,
        nodeRow,
        "No nodes. Run `gw node --url <this gateway>` on another machine to add one.",
        "nodes-none",
      );
      return null;
    } catch (e) {
      return /** @type {Error} */ (e).message;
    }
  });

  const load = async () => {
    await Promise.all([loadPairing(), loadNodes()]);
  };

  const offs = [
    "device.pair.requested",
    "device.pair.resolved",
    "node.pair.requested",
    "node.pair.resolved",
  ].map((ev) => app.on(ev, () => void load()));
  offs.push(app.on("connection", (/** @type {any} */ s) => {
    if (s?.state === "connected") void load();
  }));
  // Nodes come and go without an event this page sees; pairing lists change by events.
  const timer = setInterval(() => void loadNodes(), 10_000);
  // Requests expire after a few minutes without an event.
  const pairTimer = setInterval(() => void loadPairing(), 60_000);
  void load();
  return () => {
    clearInterval(timer);
    clearInterval(pairTimer);
    for (const off of offs) off();
  };
}

export default { id: "devices", title: "Devices", mount };
