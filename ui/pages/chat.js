/**
 * Chat: the sessions (search, derived titles) and one conversation, its reply
 * streamed from `chat` events (delta → final), thinking and tool calls
 * collapsed in `<details>`, abort, and a new session.
 *
 * Methods: sessions.list, chat.history, chat.send, chat.abort. Events: chat,
 * agent (thinking and tool streams of the current run), sessions.changed,
 * connection.
 *
 * Test hooks (data-testid):
 * - `session-search` (input), `session-list` (ul), `session-item` (button,
 *   `data-key` = the session key, `aria-current="true"` when open),
 *   `new-session` (button), `sessions-toggle` (button, narrow screens)
 * - `chat-title` (the open session's title), `messages` (the conversation),
 *   `message` (one message: `data-role` user|assistant|note, `data-state`
 *   streaming|final|aborted|error on assistant replies of this page's runs,
 *   `data-run` its runId), `thinking` / `tool` (details), `load-older`
 * - `composer` (form), `chat-input` (textarea), `send` (button), `abort`
 *   (button, shown while a run of this session is going)
 *
 * @module
 */
import { clear, debounce, h, notAvailable } from "../lib/dom.js";
import { relative, time, tokens } from "../lib/fmt.js";

const SESSION_KEY = "gw.chat.session";
const HISTORY_LIMIT = 100;

/** @param {number} n */
function randomId(n = 8) {
  const bytes = new Uint8Array(n);
  crypto.getRandomValues(bytes);
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function uuid() {
  return typeof crypto.randomUUID === "function" ? crypto.randomUUID() : `ui-${randomId(16)}`;
}

/**
 * The title a person sees for a session row.
 * @param {any} row
 */
export function sessionTitle(row) {
  return row?.label || row?.derivedTitle || row?.displayName || shortKey(row?.key ?? "");
}

/** "agent:main:ui-ab12" → "ui-ab12". @param {string} key */
function shortKey(key) {
  const m = /^agent:[^:]+:(.+)$/.exec(key);
  return m ? m[1] : key;
}

/**
 * The plain text of a message's content.
 * @param {any} content
 */
function textOf(content) {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content.filter((b) => b?.type === "text").map((b) => b.text ?? "").join("");
}

/** @param {unknown} v */
function pretty(v) {
  try {
    return typeof v === "string" ? v : JSON.stringify(v, null, 2);
  } catch {
    return String(v);
  }
}

export default {
  id: "chat",
  title: "Chat",
  /**
   * @param {HTMLElement} el
   * @param {any} app
   */
  mount(el, app) {
    if (!app.has("chat.send") || !app.has("chat.history")) {
      clear(el, h("h1", null, "Chat"), notAvailable("Chat"));
      return () => {};
    }
    /** @type {(() => void)[]} */
    const offs = [];
    let disposed = false;
    /** @type {string | null} the open session (canonical key) */
    let current = null;
    try {
      current = sessionStorage.getItem(SESSION_KEY);
    } catch { /* no storage */ }
    /** @type {any[]} */
    let rows = [];
    /** runId → the reply element of a run of the open session */
    /** @type {Map<string, HTMLElement>} */
    const replies = new Map();
    /** @type {Set<string>} runs of the open session still going */
    const running = new Set();
    /** @type {number | undefined} */
    let olderBefore;
    let loadSeq = 0;

    // ------------------------------------------------------------ elements
    const search = /** @type {HTMLInputElement} */ (h("input", {
      type: "search",
      placeholder: "Search sessions",
      "aria-label": "Search sessions",
      "data-testid": "session-search",
      autocomplete: "off",
    }));
    const list = h("ul", { class: "session-list", "data-testid": "session-list" });
    const newButton = h("button", {
      type: "button",
      class: "primary",
      "data-testid": "new-session",
      onclick: () => void newSession(),
    }, "New chat");
    const sessionsPane = h(
      "aside",
      { class: "chat-sessions", "aria-label": "Sessions" },
      h("div", { class: "row" }, h("div", { class: "grow" }, search), newButton),
      list,
    );
    const title = h("h2", { class: "title", "data-testid": "chat-title" }, "Chat");
    const toggle = h("button", {
      type: "button",
      class: "ghost small sessions-toggle",
      "data-testid": "sessions-toggle",
      "aria-label": "Show sessions",
      onclick: () => root.classList.toggle("show-sessions"),
    }, "☰ Sessions");
    const headNew = h("button", {
      type: "button",
      class: "ghost small",
      "data-testid": "new-session-head",
      title: "Start a new session",
      onclick: () => void newSession(),
    }, "+ New");
    const messages = h("div", {
      class: "messages",
      "data-testid": "messages",
      role: "log",
      "aria-live": "polite",
    });
    const input = /** @type {HTMLTextAreaElement} */ (h("textarea", {
      rows: 1,
      placeholder: "Message",
      "aria-label": "Message",
      "data-testid": "chat-input",
      enterkeyhint: "send",
    }));
    const sendButton = /** @type {HTMLButtonElement} */ (h(
      "button",
      { type: "submit", class: "primary", "data-testid": "send" },
      "Send",
    ));
    const abortButton = /** @type {HTMLButtonElement} */ (h("button", {
      type: "button",
      class: "danger",
      "data-testid": "abort",
      hidden: true,
      onclick: () => void abort(),
    }, "Stop"));
    const composer = /** @type {HTMLFormElement} */ (h(
      "form",
      { class: "composer", "data-testid": "composer" },
      input,
      abortButton,
      sendButton,
    ));
    const main = h(
      "section",
      { class: "chat-main" },
      h("div", { class: "chat-head" }, toggle, title, headNew),
      messages,
      composer,
    );
    const root = h("div", { class: "chat" }, sessionsPane, main);
    clear(el, root);

    // ------------------------------------------------------------ sessions
    const renderList = () => {
      const items = rows.map((r) => {
        const open = r.key === current;
        return h(
          "li",
          null,
          h(
            "button",
            {
              type: "button",
              class: "session-item",
              "data-testid": "session-item",
              "data-key": r.key,
              "aria-current": open ? "true" : "false",
              title: r.key,
              onclick: () => {
                root.classList.remove("show-sessions");
                void open_(r.key);
              },
            },
            h("span", { class: "title" }, sessionTitle(r)),
            h(
              "span",
              { class: "sub" },
              h("span", { class: "preview" }, r.lastMessagePreview ?? ""),
              h("span", { class: "when" }, relative(r.updatedAt)),
            ),
          ),
        );
      });
      clear(
        list,
        items.length ? items : h(
          "li",
          { class: "empty small" },
          search.value ? "No session matches." : "No sessions yet.",
        ),
      );
    };

    const loadSessions = async () => {
      if (!app.has("sessions.list")) return;
      const q = search.value.trim();
      try {
        const res = await app.request("sessions.list", {
          limit: 100,
          includeDerivedTitles: true,
          includeLastMessage: true,
          ...(q ? { search: q } : {}),
        });
        if (disposed || q !== search.value.trim()) return;
        rows = Array.isArray(res?.sessions) ? res.sessions : [];
        renderList();
        updateTitle();
      } catch (e) {
        if (!disposed) app.toast(/** @type {Error} */ (e).message, "error");
      }
    };
    const reloadSessions = debounce(() => void loadSessions(), 300);
    search.addEventListener("input", () => reloadSessions());

    const updateTitle = () => {
      const row = rows.find((r) => r.key === current);
      title.textContent = row ? sessionTitle(row) : current ? shortKey(current) : "Chat";
      title.title = current ?? "";
      for (const b of list.querySelectorAll("button.session-item")) {
        b.setAttribute("aria-current", b.getAttribute("data-key") === current ? "true" : "false");
      }
    };

    // ------------------------------------------------------------ messages
    const atBottom = () => messages.scrollHeight - messages.scrollTop - messages.clientHeight < 60;
    /** @param {boolean} [force] */
    const scrollDown = (force) => {
      if (force || atBottom()) messages.scrollTop = messages.scrollHeight;
    };

    /**
     * The details of a thinking block.
     * @param {string} text
     */
    const thinkingEl = (text) =>
      h(
        "details",
        { class: "thinking", "data-testid": "thinking" },
        h("summary", null, "Thinking"),
        h("pre", null, text),
      );

    /**
     * The details of a tool call (and its result, when known).
     * @param {{ id?: string, name?: string, arguments?: unknown }} call
     */
    const toolEl = (call) =>
      h(
        "details",
        { class: "tool", "data-testid": "tool", "data-tool-call": call.id ?? "" },
        h("summary", null, `Tool: ${call.name ?? "?"}`),
        h("pre", { class: "args" }, pretty(call.arguments ?? {})),
      );

    /**
     * Add a tool result under its call (or on its own).
     * @param {HTMLElement} scope
     * @param {string} id
     * @param {string} text
     * @param {boolean} isError
     */
    const attachResult = (scope, id, text, isError) => {
      const call = [...scope.querySelectorAll("details.tool")].find((d) =>
        d.getAttribute("data-tool-call") === id
      );
      const res = h(
        "div",
        { class: "tool-result" },
        h("div", { class: ["small", isError ? "error" : "muted"] }, isError ? "Error" : "Result"),
        h("pre", null, text),
      );
      if (call) {
        call.querySelector(".tool-result")?.remove();
        call.appendChild(res);
        return true;
      }
      return false;
    };

    /**
     * Render the blocks of an assistant message into `body`.
     * @param {HTMLElement} body
     * @param {any[] | string} content
     */
    const renderBlocks = (body, content) => {
      clear(body);
      if (typeof content === "string") {
        body.appendChild(h("div", { class: "text" }, content));
        return;
      }
      for (const b of content ?? []) {
        if (b?.type === "text" && b.text) body.appendChild(h("div", { class: "text" }, b.text));
        else if (b?.type === "thinking") {
          body.appendChild(
            thinkingEl(b.redacted ? "(redacted by the provider)" : b.thinking ?? ""),
          );
        } else if (b?.type === "toolCall") body.appendChild(toolEl(b));
      }
    };

    /**
     * One transcript message as an element (null for what is not shown).
     * @param {any} m
     * @param {HTMLElement | null} prevAssistant for tool results
     */
    const messageEl = (m, prevAssistant) => {
      if (m?.role === "user") {
        const text = textOf(m.content);
        const images = Array.isArray(m.content)
          ? m.content.filter((/** @type {any} */ b) => b?.type === "image").length
          : 0;
        return h(
          "div",
          { class: "msg user", "data-testid": "message", "data-role": "user" },
          h("div", { class: "text" }, text),
          images ? h("div", { class: "meta" }, `${images} image${images > 1 ? "s" : ""}`) : null,
          h("div", { class: "meta" }, time(m.timestamp)),
        );
      }
      if (m?.role === "assistant") {
        const body = h("div", { class: "body" });
        renderBlocks(body, m.content);
        const meta = [time(m.timestamp)];
        if (m.usage?.totalTokens) meta.push(`${tokens(m.usage.totalTokens)} tokens`);
        if (m.stopReason === "aborted") meta.push("stopped");
        if (m.stopReason === "error" && m.errorMessage) meta.push(m.errorMessage);
        return h(
          "div",
          {
            class: "msg assistant",
            "data-testid": "message",
            "data-role": "assistant",
            "data-state": m.stopReason === "aborted" ? "aborted" : "final",
          },
          body,
          h("div", { class: "meta" }, meta.filter(Boolean).join(" · ")),
        );
      }
      if (m?.role === "toolResult") {
        const text = textOf(m.content);
        if (prevAssistant && attachResult(prevAssistant, m.toolCallId, text, !!m.isError)) {
          return null;
        }
        return h(
          "div",
          { class: "msg assistant", "data-testid": "message", "data-role": "tool" },
          h(
            "details",
            { class: "tool", "data-testid": "tool" },
            h("summary", null, `Tool result: ${m.toolName ?? "?"}`),
            h("pre", null, text),
          ),
        );
      }
      if (m?.role === "custom" && m.display !== false) {
        return h(
          "div",
          { class: "msg note-msg", "data-testid": "message", "data-role": "note" },
          String(m.content ?? ""),
        );
      }
      return null;
    };

    /**
     * Render a page of history (oldest first) at the end, or at the start when `prepend`.
     * @param {any[]} list_
     * @param {boolean} prepend
     */
    const renderHistory = (list_, prepend) => {
      const frag = document.createDocumentFragment();
      /** @type {HTMLElement | null} */
      let lastAssistant = null;
      for (const m of list_) {
        const e = messageEl(m, lastAssistant);
        if (!e) continue;
        if (m.role === "assistant") lastAssistant = e;
        frag.appendChild(e);
      }
      if (prepend) {
        const first = messages.querySelector(".load-older")?.nextSibling ?? messages.firstChild;
        messages.insertBefore(frag, first);
      } else messages.appendChild(frag);
    };

    const olderButton = () =>
      h("button", {
        type: "button",
        class: "ghost small load-older",
        "data-testid": "load-older",
        onclick: () => void loadOlder(),
      }, "Load older messages");

    /** @param {string} key */
    const loadHistory = async (key) => {
      const seq = ++loadSeq;
      const res = await app.request("chat.history", { sessionKey: key, limit: HISTORY_LIMIT });
      if (disposed || seq !== loadSeq) return null;
      current = res.sessionKey ?? key;
      try {
        sessionStorage.setItem(SESSION_KEY, /** @type {string} */ (current));
      } catch { /* no storage */ }
      replies.clear();
      clear(messages);
      olderBefore = res.hasMore ? res.before : undefined;
      if (olderBefore !== undefined) messages.appendChild(olderButton());
      const msgs = Array.isArray(res.messages) ? res.messages : [];
      renderHistory(msgs, false);
      if (!msgs.length) {
        messages.appendChild(
          h(
            "p",
            { class: "empty", "data-testid": "empty-chat" },
            "No messages yet. Say something to start.",
          ),
        );
      }
      running.clear();
      for (const id of res.activeRunIds ?? []) running.add(id);
      updateRunning();
      updateTitle();
      scrollDown(true);
      return res;
    };

    const loadOlder = async () => {
      if (olderBefore === undefined || !current) return;
      try {
        const res = await app.request("chat.history", {
          sessionKey: current,
          limit: HISTORY_LIMIT,
          before: olderBefore,
        });
        if (disposed) return;
        messages.querySelector(".load-older")?.remove();
        const height = messages.scrollHeight;
        renderHistory(Array.isArray(res.messages) ? res.messages : [], true);
        olderBefore = res.hasMore ? res.before : undefined;
        if (olderBefore !== undefined) messages.insertBefore(olderButton(), messages.firstChild);
        messages.scrollTop += messages.scrollHeight - height;
      } catch (e) {
        app.toast(/** @type {Error} */ (e).message, "error");
      }
    };

    /** @param {string} key */
    const open_ = async (key) => {
      try {
        await loadHistory(key);
        renderList();
        input.focus();
      } catch (e) {
        if (!disposed) app.toast(/** @type {Error} */ (e).message, "error");
      }
    };

    const newSession = async () => {
      root.classList.remove("show-sessions");
      await open_(`ui-${new Date().toISOString().slice(0, 10)}-${randomId(3)}`);
    };

    // ------------------------------------------------------------ running state
    const updateRunning = () => {
      const busy = running.size > 0;
      abortButton.hidden = !busy;
      sendButton.hidden = busy;
    };

    /**
     * The reply element of `runId` (created at the end when missing).
     * @param {string} runId
     */
    const replyEl = (runId) => {
      let e = replies.get(runId);
      if (!e) {
        messages.querySelector("[data-testid=empty-chat]")?.remove();
        e = h(
          "div",
          {
            class: "msg assistant",
            "data-testid": "message",
            "data-role": "assistant",
            "data-state": "streaming",
            "data-run": runId,
          },
          h("div", { class: "live-extra" }),
          h("div", { class: "body" }, h("div", { class: "text" })),
          h("div", { class: "meta" }),
        );
        replies.set(runId, e);
        messages.appendChild(e);
      }
      return e;
    };

    /**
     * After the end of a run: the live thinking goes when the final message
     * carries its own; tool calls of earlier rounds stay.
     * @param {HTMLElement} e
     * @param {any} message
     */
    const settleExtra = (e, message) => {
      const extra = e.querySelector(".live-extra");
      if (!extra) return;
      const content = Array.isArray(message?.content) ? message.content : [];
      if (content.some((/** @type {any} */ b) => b?.type === "thinking")) {
        extra.querySelector("details.thinking")?.remove();
      }
      if (content.some((/** @type {any} */ b) => b?.type === "toolCall")) {
        for (const d of extra.querySelectorAll("details.tool")) d.remove();
      }
      if (!extra.firstChild) extra.remove();
    };

    // ------------------------------------------------------------ events
    /** @param {any} p */
    const onChat = (p) => {
      if (!p || p.sessionKey !== current || typeof p.runId !== "string") return;
      const stick = atBottom();
      const e = replyEl(p.runId);
      const body = /** @type {HTMLElement} */ (e.querySelector(".body"));
      const meta = /** @type {HTMLElement} */ (e.querySelector(".meta"));
      if (p.state === "delta") {
        running.add(p.runId);
        e.dataset.state = "streaming";
        const full = textOf(p.message?.content);
        let text = /** @type {HTMLElement | null} */ (body.querySelector(".text"));
        if (!text) body.appendChild(text = h("div", { class: "text" }));
        if (full) text.textContent = full;
        else if (typeof p.deltaText === "string") {
          text.textContent = p.replace ? p.deltaText : (text.textContent ?? "") + p.deltaText;
        }
      } else if (p.state === "final") {
        running.delete(p.runId);
        e.dataset.state = "final";
        if (p.message) renderBlocks(body, p.message.content);
        settleExtra(e, p.message);
        const bits = [time(p.message?.timestamp ?? Date.now())];
        if (p.usage?.totalTokens) bits.push(`${tokens(p.usage.totalTokens)} tokens`);
        meta.textContent = bits.join(" · ");
        void loadSessions();
      } else if (p.state === "aborted") {
        running.delete(p.runId);
        e.dataset.state = "aborted";
        if (p.message) renderBlocks(body, p.message.content);
        settleExtra(e, p.message);
        meta.textContent = "Stopped";
        void loadSessions();
      } else if (p.state === "error") {
        running.delete(p.runId);
        e.dataset.state = "error";
        meta.textContent = p.errorMessage
          ? `This turn ended without a reply: ${p.errorMessage}`
          : "This turn ended without a reply.";
        meta.classList.add("error");
        void loadSessions();
      }
      updateRunning();
      if (stick) scrollDown(true);
    };

    /** Thinking and tool calls of a run as they happen. @param {any} p */
    const onAgent = (p) => {
      if (!p || p.sessionKey !== current || typeof p.runId !== "string") return;
      if (p.stream !== "thinking" && p.stream !== "tool") return;
      const e = replies.get(p.runId) ?? replyEl(p.runId);
      const extra = e.querySelector(".live-extra");
      if (!extra) return;
      if (p.stream === "thinking") {
        let d = extra.querySelector("details.thinking");
        if (!d) extra.appendChild(d = thinkingEl(""));
        /** @type {HTMLElement} */ (d.querySelector("pre")).textContent = p.data?.text ?? "";
      } else if (p.data?.phase === "start") {
        extra.appendChild(
          toolEl({ id: p.data.toolCallId, name: p.data.name, arguments: p.data.args }),
        );
      } else if (p.data?.phase === "result") {
        attachResult(
          /** @type {HTMLElement} */ (extra),
          p.data.toolCallId,
          String(p.data.result ?? ""),
          !!p.data.isError,
        );
      }
    };

    offs.push(app.on("chat", onChat));
    offs.push(app.on("agent", onAgent));
    offs.push(app.on("sessions.changed", () => reloadSessions()));
    offs.push(app.on("connection", (/** @type {any} */ c) => {
      composer.classList.toggle("offline", c.state !== "connected");
      if (c.state === "connected") {
        // Back after a drop: what happened meanwhile is in the transcript.
        void loadSessions();
        if (current) void open_(current);
      }
    }));

    // ------------------------------------------------------------ send / abort
    const send = async () => {
      const text = input.value.trim();
      if (!text) return;
      if (!current) await open_("main");
      if (!current) return;
      const runId = uuid();
      messages.querySelector("[data-testid=empty-chat]")?.remove();
      messages.appendChild(
        h(
          "div",
          { class: "msg user", "data-testid": "message", "data-role": "user" },
          h("div", { class: "text" }, text),
          h("div", { class: "meta" }, time(Date.now())),
        ),
      );
      input.value = "";
      autosize();
      running.add(runId);
      updateRunning();
      replyEl(runId);
      scrollDown(true);
      try {
        await app.request("chat.send", {
          sessionKey: current,
          message: text,
          idempotencyKey: runId,
        });
      } catch (e) {
        running.delete(runId);
        updateRunning();
        const r = replies.get(runId);
        if (r) {
          r.dataset.state = "error";
          const meta = /** @type {HTMLElement} */ (r.querySelector(".meta"));
          meta.textContent = `Not sent: ${/** @type {Error} */ (e).message}`;
          meta.classList.add("error");
        }
        input.value ||= text;
      }
    };

    const abort = async () => {
      if (!current) return;
      abortButton.disabled = true;
      try {
        await app.request("chat.abort", { sessionKey: current });
      } catch (e) {
        app.toast(/** @type {Error} */ (e).message, "error");
      } finally {
        abortButton.disabled = false;
      }
    };

    const autosize = () => {
      input.style.height = "auto";
      input.style.height = `${Math.min(200, input.scrollHeight + 2)}px`;
    };
    input.addEventListener("input", autosize);
    input.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
        ev.preventDefault();
        void send();
      }
    });
    composer.addEventListener("submit", (ev) => {
      ev.preventDefault();
      void send();
    });

    // ------------------------------------------------------------ start
    void (async () => {
      await loadSessions();
      if (disposed) return;
      const key = current ?? rows[0]?.key ?? "main";
      await open_(key);
    })();

    return () => {
      disposed = true;
      reloadSessions.cancel();
      for (const off of offs) off();
    };
  },
};
