/**
 * The Control UI shell: login, the connection (its state shown in `#conn`,
 * reconnecting by itself), navigation between pages, toasts, and the `app`
 * object pages get.
 *
 * Security (CVE-2026-25253): the page talks only to the gateway that served
 * it — the WebSocket URL is always this page's own origin — and never reads a
 * gateway URL, token or anything else from the query string or the hash (the
 * hash is only a page id: `#/chat`). The token is typed once and kept in
 * sessionStorage (`gw.token`), or localStorage when "remember" is checked.
 * The page signs its connects with a device identity kept in IndexedDB, so
 * the gateway pairs it and issues it its own revocable device token.
 *
 * Pages: `ui/pages/<id>.js`, `export default { id, title, mount(el, app) }`;
 * `mount` renders into `el` and returns an unmount function.
 *
 * @module
 */
import { deviceAuthHook, GatewayClient, IndexedDbIdentityStorage } from "./gw-client.js";
import { clear, h } from "./lib/dom.js";
import { describeError, toUiError } from "./lib/errors.js";

/** The pages, in nav order. */
const PAGES = [
  { id: "chat", title: "Chat" },
  { id: "approvals", title: "Approvals" },
  { id: "devices", title: "Devices" },
  { id: "cron", title: "Cron" },
  { id: "channels", title: "Channels" },
  { id: "usage", title: "Usage" },
  { id: "logs", title: "Logs" },
  { id: "config", title: "Config" },
];
const DEFAULT_PAGE = "chat";
const TOKEN_KEY = "gw.token";

/** Always this page's own origin (never from the query string or hash). */
const WS_URL = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}`;

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
const els = {
  conn: $("conn"),
  logout: $("logout"),
  loginView: $("login-view"),
  login: /** @type {HTMLFormElement} */ ($("login")),
  token: /** @type {HTMLInputElement} */ ($("token")),
  remember: /** @type {HTMLInputElement} */ ($("remember")),
  loginError: $("login-error"),
  appView: $("app-view"),
  nav: $("nav"),
  page: $("page"),
  toasts: $("toasts"),
};

/** @type {IndexedDbIdentityStorage | null} */
let identity = null;
/** @type {GatewayClient | null} */
let client = null;
/** @type {Map<string, Set<(payload: any, frame?: any) => void>>} */
const listeners = new Map();
/** @type {"connecting" | "connected" | "disconnected"} */
let connState = "connecting";
/** @type {(() => void) | null} */
let unmountPage = null;
let mountSeq = 0;
/** @type {string | null} */
let currentPage = null;
/** @type {ReturnType<typeof setTimeout> | undefined} */
let retryTimer;
let retryAttempt = 0;

// ---------------------------------------------------------------- storage

function storedToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) ?? localStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

/** @param {string} token @param {boolean} remember */
function storeToken(token, remember) {
  try {
    sessionStorage.setItem(TOKEN_KEY, token);
    if (remember) localStorage.setItem(TOKEN_KEY, token);
    else localStorage.removeItem(TOKEN_KEY);
  } catch { /* storage disabled: the token lives in memory only */ }
}

/** Whether the token is kept across browser restarts (localStorage). */
function remembered() {
  try {
    return localStorage.getItem(TOKEN_KEY) !== null;
  } catch {
    return false;
  }
}

function forgetToken() {
  try {
    sessionStorage.removeItem(TOKEN_KEY);
    localStorage.removeItem(TOKEN_KEY);
  } catch { /* nothing stored */ }
}

/** The identity store, or null when this browser cannot keep one (no IndexedDB or WebCrypto). */
function identityStore() {
  if (identity) return identity;
  if (!globalThis.indexedDB || !globalThis.crypto?.subtle) return null;
  identity = new IndexedDbIdentityStorage("gw-identity");
  return identity;
}

// ---------------------------------------------------------------- connection state

const CONN_LABELS = {
  connecting: "Connecting…",
  connected: "Connected",
  disconnected: "Disconnected — reconnecting…",
};

/**
 * @param {"connecting" | "connected" | "disconnected"} state
 * @param {string} [label]
 * @param {unknown} [error]
 */
function setConn(state, label, error) {
  connState = state;
  els.conn.dataset.state = state;
  const text = label ?? CONN_LABELS[state];
  /** @type {HTMLElement} */ (els.conn.querySelector(".label")).textContent = text;
  els.conn.title = error ? describeError(error) : text;
  emit("connection", error ? { state, error: describeError(error) } : { state });
}

// ---------------------------------------------------------------- events

/**
 * @param {string} event
 * @param {unknown} payload
 * @param {unknown} [frame]
 */
function emit(event, payload, frame) {
  for (const fn of [...(listeners.get(event) ?? [])]) {
    try {
      fn(payload, frame);
    } catch (e) {
      console.error(`a ${event} listener failed`, e);
    }
  }
}

// ---------------------------------------------------------------- toasts

/**
 * @param {string} text
 * @param {"info" | "error" | "ok"} [kind]
 */
function toast(text, kind = "info") {
  const el = h("div", {
    class: ["toast", kind],
    role: kind === "error" ? "alert" : "status",
    "data-testid": "toast",
    dataset: { kind },
    title: "Dismiss",
  }, text);
  const remove = () => el.remove();
  el.addEventListener("click", remove);
  els.toasts.appendChild(el);
  while (els.toasts.children.length > 4) els.toasts.firstElementChild?.remove();
  setTimeout(remove, kind === "error" ? 9000 : 5000);
}

// ---------------------------------------------------------------- the app object

/** What pages get. */
const app = {
  /**
   * Call a gateway method; throws an Error whose message is in words, with
   * the gateway's `code` and `details`.
   * @param {string} method
   * @param {unknown} [params]
   * @param {{ timeoutMs?: number, signal?: AbortSignal }} [opts]
   */
  async request(method, params, opts = {}) {
    if (!client) throw toUiError(new Error("Not connected to the gateway."));
    try {
      /** @type {any} */
      const o = {};
      if (opts.timeoutMs !== undefined) o.timeoutMs = opts.timeoutMs;
      if (opts.signal) o.signal = opts.signal;
      return await client.request(/** @type {any} */ (method), /** @type {any} */ (params), o);
    } catch (e) {
      throw toUiError(e);
    }
  },
  /**
   * Listen to a gateway event (or `connection`); returns the unsubscriber.
   * @param {string} event
   * @param {(payload: any, frame?: any) => void} fn
   */
  on(event, fn) {
    let set = listeners.get(event);
    if (!set) listeners.set(event, set = new Set());
    set.add(fn);
    return () => set.delete(fn);
  },
  toast,
  /** The hello-ok payload of the current (or last) connection. */
  get hello() {
    return client?.hello ?? null;
  },
  /** The connection state: connecting, connected or disconnected. */
  get state() {
    return connState;
  },
  /**
   * Whether the gateway advertises `method` (hello-ok features.methods).
   * @param {string} method
   */
  has(method) {
    const m = client?.hello?.features?.methods;
    return Array.isArray(m) ? m.includes(method) : false;
  },
  /** Show a page by id. @param {string} id */
  navigate(id) {
    const next = `#/${id}`;
    if (location.hash !== next) location.hash = next;
    else route();
  },
  /** The error's words (for pages that catch errors themselves). */
  describeError,
};
// Handy for debugging in the browser's console; nothing reads it back.
Object.defineProperty(globalThis, "gwApp", { value: app });

// ---------------------------------------------------------------- routing

function pageIdFromHash() {
  // The hash is only ever a page id; anything else in it is ignored.
  const m = /^#\/([a-z][a-z0-9-]{0,31})$/.exec(location.hash);
  const id = m?.[1];
  return id && PAGES.some((p) => p.id === id) ? id : DEFAULT_PAGE;
}

function renderNav() {
  clear(
    els.nav,
    PAGES.map((p) =>
      h("a", { href: `#/${p.id}`, dataset: { page: p.id } }, h("span", null, p.title))
    ),
  );
}

function markNav(/** @type {string} */ id) {
  for (const a of els.nav.querySelectorAll("a[data-page]")) {
    if (/** @type {HTMLElement} */ (a).dataset.page === id) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

async function route() {
  if (!client || els.appView.hidden) return;
  const id = pageIdFromHash();
  if (id === currentPage && unmountPage) return;
  const seq = ++mountSeq;
  if (unmountPage) {
    try {
      unmountPage();
    } catch (e) {
      console.error("unmount failed", e);
    }
    unmountPage = null;
  }
  currentPage = id;
  markNav(id);
  const info = PAGES.find((p) => p.id === id);
  document.title = `${info?.title ?? id} · gw`;
  // A fresh element per page: listeners a page left behind die with the old one.
  const el = h("main", { id: "page", class: "page", tabindex: "-1", dataset: { page: id } });
  els.page.replaceWith(el);
  els.page = el;
  let mod;
  try {
    mod = await import(`./pages/${id}.js`);
  } catch (e) {
    if (seq !== mountSeq) return;
    console.error(`page ${id} failed to load`, e);
    clear(el, h("p", { class: "note" }, `The ${info?.title ?? id} page could not be loaded.`));
    return;
  }
  if (seq !== mountSeq) return;
  try {
    const un = mod.default.mount(el, app);
    unmountPage = typeof un === "function" ? un : null;
  } catch (e) {
    console.error(`page ${id} failed`, e);
    clear(el, h("p", { class: "error" }, describeError(e)));
  }
}

// ---------------------------------------------------------------- views

/** @param {string} [error] */
function showLogin(error) {
  teardownPage();
  els.appView.hidden = true;
  els.logout.hidden = true;
  els.loginView.hidden = false;
  els.loginError.textContent = error ?? "";
  const button = /** @type {HTMLButtonElement} */ (els.login.querySelector("button[type=submit]"));
  button.disabled = false;
  button.textContent = "Connect";
  setConn("disconnected", "Not connected");
  els.token.focus();
}

function showApp() {
  els.loginView.hidden = true;
  els.appView.hidden = false;
  els.logout.hidden = false;
  els.loginError.textContent = "";
  els.token.value = "";
  route();
}

function teardownPage() {
  mountSeq++;
  if (unmountPage) {
    try {
      unmountPage();
    } catch { /* already gone */ }
  }
  unmountPage = null;
  currentPage = null;
}

// ---------------------------------------------------------------- connect

/**
 * Whether a connect failure means the credentials are wrong (show the login)
 * rather than a network problem (try again).
 * @param {any} e
 */
function isRefusal(e) {
  return e?.name === "GatewayRequestError";
}

/**
 * Connect with `token`.
 * @param {string} token
 * @param {{ fromLogin?: boolean, remember?: boolean }} [opts]
 */
async function start(token, opts = {}) {
  clearTimeout(retryTimer);
  const old = client;
  client = null;
  if (old) await old.close().catch(() => {});
  const store = identityStore();
  if (!store) {
    showLogin(
      "This browser cannot keep a device identity here (it needs IndexedDB and WebCrypto, which browsers give only to https:// pages and http://127.0.0.1 or localhost). Open the page through localhost, or serve gw over HTTPS.",
    );
    return;
  }
  const c = new GatewayClient({
    url: WS_URL,
    token,
    client: {
      id: "openclaw-control-ui",
      mode: "webchat",
      displayName: "Control UI",
      version: "gw-control-ui",
    },
    signDevice: deviceAuthHook(store),
    deviceTokens: store,
    // A typed token is checked as typed; later connects use this browser's own device token.
    useDeviceToken: !opts.fromLogin,
    reconnect: { initialDelayMs: 300, maxDelayMs: 5000, factor: 1.7, jitter: 0.2 },
    requestTimeoutMs: 30_000,
  });
  client = c;
  c.on("*", (payload, frame) => {
    if (client === c) emit(frame.event, payload, frame);
  });
  c.onState((state, error) => {
    if (client !== c) return;
    if (state === "connected") {
      retryAttempt = 0;
      setConn("connected");
    } else if (state === "connecting") setConn("connecting");
    else if (state === "reconnecting") setConn("disconnected", undefined, error);
    else if (state === "closed" && error && isRefusal(error) && !els.appView.hidden) {
      // Refused while reconnecting (token changed, device revoked): back to the login.
      forgetToken();
      client = null;
      showLogin(describeError(error));
    }
  });
  setConn("connecting");
  try {
    await c.connect();
  } catch (e) {
    if (client !== c) return;
    const code = /** @type {any} */ (e)?.details?.code;
    if (isRefusal(e) && code === "PAIRING_REQUIRED") {
      // Waiting for an operator to approve this browser: ask again every few seconds.
      storeToken(token, opts.remember ?? remembered());
      setConn("disconnected", "Waiting for pairing approval", e);
      if (opts.fromLogin) els.loginError.textContent = describeError(e);
      else showLogin(describeError(e));
      retryTimer = setTimeout(() => start(token, opts), 5000);
      return;
    }
    if (isRefusal(e)) {
      client = null;
      if (!opts.fromLogin) forgetToken();
      showLogin(describeError(e));
      return;
    }
    // The gateway is not reachable: keep trying with a growing pause.
    const delay = Math.min(10_000, 500 * 2 ** retryAttempt++);
    if (opts.fromLogin) {
      client = null;
      showLogin(describeError(e));
      return;
    }
    setConn("disconnected", undefined, e);
    retryTimer = setTimeout(() => start(token, opts), delay);
    return;
  }
  if (client !== c) return;
  if (opts.fromLogin) storeToken(token, opts.remember ?? false);
  showApp();
}

async function logout() {
  clearTimeout(retryTimer);
  const c = client;
  client = null;
  forgetToken();
  teardownPage();
  if (c) await c.close().catch(() => {});
  // This browser's device token goes too; its identity stays (a new login re-pairs it).
  await identityStore()?.clearToken(WS_URL).catch(() => {});
  showLogin();
  toast("Logged out.", "ok");
}

// ---------------------------------------------------------------- boot

els.login.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const token = els.token.value.trim();
  if (!token) {
    els.loginError.textContent = "Type the gateway's token to connect.";
    return;
  }
  const button = /** @type {HTMLButtonElement} */ (els.login.querySelector("button[type=submit]"));
  button.disabled = true;
  button.textContent = "Connecting…";
  els.loginError.textContent = "";
  start(token, { fromLogin: true, remember: els.remember.checked }).finally(() => {
    button.disabled = false;
    button.textContent = "Connect";
  });
});
els.logout.addEventListener("click", () => void logout());
addEventListener("hashchange", () => void route());
renderNav();

const saved = storedToken();
if (saved) {
  els.loginView.hidden = true;
  void start(saved);
} else {
  showLogin();
}
