/**
 * Channels: `channels.status` for each configured channel and its accounts
 * (state, last error, the problems the gateway sees with how to fix them),
 * a Probe button (`probe: true` checks the credentials with the platform
 * now), and, for a channel that advertises `<id>.pairing.list` (Telegram),
 * the senders waiting for approval with approve / reject. Refreshes every
 * 15 s and on `channel.pairing.*` events.
 *
 * DOM hooks (data-testid):
 * - `channels-probe` (the Probe button), `channels-empty` (no channels).
 * - `channel` (`data-channel`, `data-state`): one channel; inside it
 *   `channel-account` (`data-account`, `data-state`), `channel-state`,
 *   `channel-error`, `channel-probe` (after a probe), `channel-issue`.
 * - `channel-pairing` (`data-channel`): its pairing requests;
 *   `channel-pairing-request` (`data-code`) with buttons
 *   `data-action="approve" | "reject"`; `channel-pairing-empty` when none.
 *
 * @module
 */
import { clear, h, notAvailable } from "../lib/dom.js";
import { relative } from "../lib/fmt.js";
import { visible } from "../lib/text.js";

/**
 * A person's word for an account's state, and a class for its badge.
 * @param {any} a
 * @returns {{ state: string, label: string, kind: string }}
 */
export function accountState(a) {
  if (a.enabled === false) return { state: "disabled", label: "disabled", kind: "" };
  if (a.configured === false) {
    return { state: "unconfigured", label: "not configured", kind: "warn" };
  }
  if (a.connected) return { state: "connected", label: "connected", kind: "ok" };
  if (a.running) {
    return a.lastError
      ? { state: "error", label: "running, not connected", kind: "err" }
      : { state: "starting", label: "starting", kind: "warn" };
  }
  if (a.lastError) return { state: "error", label: "stopped with an error", kind: "err" };
  return { state: "stopped", label: "stopped", kind: "" };
}

/**
 * @param {HTMLElement} el
 * @param {any} app
 * @returns {() => void}
 */
function mount(el, app) {
  const methods = app.hello?.features?.methods ?? [];
  clear(el, h("h1", null, "Channels"));
  if (!methods.includes("channels.status")) {
    el.append(notAvailable("Channel status"));
    return () => {};
  }
  const body = h("div", { class: "channels-list", "data-testid": "channels-list" });
  const status = h("p", { class: "muted", role: "status" });
  const probeBtn = /** @type {HTMLButtonElement} */ (h("button", {
    type: "button",
    class: "primary",
    "data-testid": "channels-probe",
    title: "Check each channel's credentials with its platform now",
    onclick: () => load(true),
  }, "Probe"));
  el.append(h("div", { class: "toolbar channels-toolbar" }, probeBtn, status), body);

  /** @type {Map<string, { box: HTMLElement, refresh: () => Promise<void> }>} */
  const sections = new Map();

  /** Probe results by channel and account, kept across the plain refreshes. */
  /** @type {Map<string, any>} */
  const probes = new Map();

  /** @param {string} channel @param {string} label */
  const pairingSection = (channel, label) => {
    let sec = sections.get(channel);
    if (!sec) {
      sec = newPairingSection(channel, label);
      sections.set(channel, sec);
    }
    void sec.refresh();
    return sec.box;
  };

  /**
   * The pairing box of a channel, kept across refreshes (its list changes
   * only when a new answer arrives, so it does not flicker).
   * @param {string} channel @param {string} label
   * @returns {{ box: HTMLElement, refresh: () => Promise<void> }}
   */
  const newPairingSection = (channel, label) => {
    let seq = 0;
    const box = h("section", {
      class: "channels-pairing",
      "data-testid": "channel-pairing",
      dataset: { channel },
    }, h("h3", null, `${label}: people waiting for approval`));
    const list = h("div", { class: "channels-pairing-list" }, h("p", { class: "muted" }, "…"));
    box.append(list);
    /** @param {string} verb @param {string} code */
    const answer = async (verb, code) => {
      try {
        const r = await app.request(`${channel}.pairing.${verb}`, { code });
        app.toast(
          verb === "approve"
            ? `Approved${r?.notified === false ? " (they could not be told yet)" : ""}.`
            : "Rejected.",
          "ok",
        );
      } catch (e) {
        app.toast(/** @type {Error} */ (e).message, "error");
      }
      void load(false);
    };
    const refresh = async () => {
      const mine = ++seq;
      try {
        const r = await app.request(`${channel}.pairing.list`, {});
        if (mine !== seq) return;
        const reqs = Array.isArray(r.requests) ? r.requests : [];
        const allowed = Array.isArray(r.allowed) ? r.allowed : [];
        clear(
          list,
          reqs.length
            ? reqs.map((/** @type {any} */ q) =>
              h(
                "div",
                {
                  class: "card channels-request",
                  "data-testid": "channel-pairing-request",
                  dataset: { code: q.code },
                },
                h(
                  "div",
                  null,
                  h("strong", null, visible(q.senderName || q.username || q.senderId)),
                  q.username ? h("span", { class: "muted" }, ` @${visible(q.username)}`) : null,
                  h("span", { class: "muted" }, ` · id ${visible(q.senderId)}`),
                ),
                h(
                  "div",
                  { class: "muted" },
                  "Code ",
                  h("code", { class: "channels-mono" }, visible(q.code)),
                  ` · asked ${relative(q.createdAt)} · expires ${relative(q.expiresAt)}`,
                ),
                h(
                  "div",
                  { class: "row channels-actions" },
                  h("button", {
                    type: "button",
                    class: "primary",
                    dataset: { action: "approve" },
                    onclick: () => answer("approve", q.code),
                  }, "Approve"),
                  h("button", {
                    type: "button",
                    class: "danger",
                    dataset: { action: "reject" },
                    onclick: () => answer("reject", q.code),
                  }, "Reject"),
                ),
              )
            )
            : h(
              "p",
              { class: "note", "data-testid": "channel-pairing-empty" },
              "Nobody is waiting. Someone who writes to the bot gets a code that shows up here.",
            ),
          h(
            "p",
            { class: "muted" },
            allowed.length
              ? `Approved: ${
                allowed.map((/** @type {any} */ a) =>
                  visible(a.senderName || (a.username ? `@${a.username}` : a.senderId))
                ).join(", ")
              }`
              : "Nobody is approved yet.",
          ),
        );
      } catch (e) {
        if (mine === seq) clear(list, h("p", { class: "error" }, /** @type {Error} */ (e).message));
      }
    };
    return { box, refresh };
  };

  /**
   * @param {string} id
   * @param {any} a
   * @param {any[]} issues
   */
  const accountCard = (id, a, issues) => {
    const st = accountState(a);
    const probe = a.probe ?? probes.get(`${id}/${a.accountId}`);
    /** @type {[string, unknown][]} */
    const facts = [
      ["Mode", a.mode],
      ["Connected", a.lastConnectedAt ? relative(a.lastConnectedAt) : null],
      ["Last message in", a.lastInboundAt ? relative(a.lastInboundAt) : null],
      ["Last message out", a.lastOutboundAt ? relative(a.lastOutboundAt) : null],
      ["Reconnects", a.reconnectAttempts ? String(a.reconnectAttempts) : null],
      ["Direct messages", a.dmPolicy],
      ["Token from", a.tokenSource],
      ["Webhook", a.webhookUrl],
      ["Replying", a.activeRuns ? `${a.activeRuns} now` : null],
    ];
    return h(
      "div",
      {
        class: "channels-account",
        "data-testid": "channel-account",
        dataset: { account: a.accountId, state: st.state },
      },
      h(
        "div",
        { class: "channels-account-head" },
        h("strong", null, visible(a.name || a.accountId)),
        h("span", { class: ["badge", st.kind], "data-testid": "channel-state" }, st.label),
      ),
      a.lastError
        ? h(
          "p",
          { class: "error channels-error", "data-testid": "channel-error" },
          `Last error: ${visible(a.lastError)}`,
        )
        : null,
      probe
        ? h(
          "p",
          {
            class: ["channels-probe", probe.ok ? "channels-probe-ok" : "error"],
            "data-testid": "channel-probe",
          },
          probe.ok
            ? `Probe: the credentials work${
              probe.bot?.username ? ` (@${visible(probe.bot.username)})` : ""
            }${probe.elapsedMs !== undefined ? `, ${probe.elapsedMs} ms` : ""}.`
            : `Probe failed: ${visible(probe.error ?? "unknown error")}`,
        )
        : null,
      h(
        "dl",
        { class: "channels-meta" },
        facts.filter(([, v]) => v !== null && v !== undefined && v !== "").map(([k, v]) => [
          h("dt", null, k),
          h("dd", null, visible(v)),
        ]),
      ),
      issues.length
        ? h(
          "ul",
          { class: "channels-issues" },
          issues.map((i) =>
            h(
              "li",
              { "data-testid": "channel-issue", dataset: { kind: i.kind } },
              h("span", { class: "badge warn" }, visible(i.kind)),
              " ",
              visible(i.message),
              i.fix ? h("div", { class: "channels-fix" }, "Fix: ", visible(i.fix)) : null,
            )
          ),
        )
        : null,
    );
  };

  let seq = 0;
  /** @param {boolean} probe */
  const load = async (probe) => {
    const mine = ++seq;
    if (probe) {
      probeBtn.disabled = true;
      probeBtn.textContent = "Probing…";
    }
    try {
      const r = await app.request(
        "channels.status",
        probe ? { probe: true, timeoutMs: 8000 } : {},
        { timeoutMs: probe ? 20_000 : 10_000 },
      );
      if (mine !== seq && !probe) return;
      render(r, probe);
      status.textContent = `${probe ? "Probed" : "Updated"} ${new Date().toLocaleTimeString()}`;
      status.classList.remove("error");
    } catch (e) {
      status.textContent = `Could not read the channels: ${/** @type {Error} */ (e).message}`;
      status.classList.add("error");
    } finally {
      if (probe) {
        probeBtn.disabled = false;
        probeBtn.textContent = "Probe";
      }
    }
  };

  /** @param {any} r @param {boolean} probed */
  const render = (r, probed) => {
    const order = Array.isArray(r.channelOrder) ? r.channelOrder : [];
    const issues = Array.isArray(r.statusIssues) ? r.statusIssues : [];
    if (order.length === 0) {
      clear(
        body,
        h(
          "div",
          { class: "note channels-empty", "data-testid": "channels-empty" },
          h(
            "p",
            null,
            "No channels are configured, so the agent only talks here and over the API.",
          ),
          h(
            "p",
            null,
            "Connect a Telegram bot with ",
            h("code", null, "gw channels add telegram"),
            " or in ",
            h("a", {
              href: "#/config",
              onclick: (/** @type {Event} */ e) => {
                e.preventDefault();
                app.navigate("config");
              },
            }, "Config"),
            ".",
          ),
        ),
      );
      return;
    }
    const cards = order.map((/** @type {string} */ id) => {
      const label = visible(r.channelLabels?.[id] ?? id);
      const summary = r.channels?.[id] ?? {};
      const accounts = r.channelAccounts?.[id] ?? [];
      if (probed) {
        for (const a of accounts) if (a.probe) probes.set(`${id}/${a.accountId}`, a.probe);
      }
      const st = accountState(accounts[0] ?? summary);
      const mine = issues.filter((/** @type {any} */ i) => i.channel === id);
      return h(
        "article",
        {
          class: "card channels-card",
          "data-testid": "channel",
          dataset: { channel: id, state: st.state },
        },
        h(
          "header",
          { class: "channels-head" },
          h("h2", null, label),
          r.channelDetailLabels?.[id] && r.channelDetailLabels[id] !== r.channelLabels?.[id]
            ? h("span", { class: "muted" }, visible(r.channelDetailLabels[id]))
            : null,
        ),
        accounts.length
          ? accounts.map((/** @type {any} */ a) =>
            accountCard(id, a, mine.filter((/** @type {any} */ i) => i.accountId === a.accountId))
          )
          : accountCard(id, { accountId: "default", ...summary }, mine),
        methods.includes(`${id}.pairing.list`) ? pairingSection(id, label) : null,
      );
    });
    const warnings = Array.isArray(r.warnings) ? r.warnings : [];
    clear(
      body,
      cards,
      warnings.length
        ? h(
          "ul",
          { class: "error" },
          warnings.map((/** @type {string} */ w) => h("li", null, visible(w))),
        )
        : null,
    );
  };

  const offs = ["channel.pairing.requested", "channel.pairing.resolved"].map((ev) =>
    app.on(ev, () => void load(false))
  );
  offs.push(app.on("connection", (/** @type {any} */ s) => {
    if (s?.state === "connected") void load(false);
  }));
  const timer = setInterval(() => void load(false), 15_000);
  void load(false);
  return () => {
    clearInterval(timer);
    for (const off of offs) off();
  };
}

export default { id: "channels", title: "Channels", mount };
