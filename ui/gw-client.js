// lib/protocol/types.ts
var PROTOCOL_VERSIONS = [
  3,
  4
];
var PROTOCOL_VERSION = 4;
var MIN_PROTOCOL_VERSION = 3;
var CloseCode = {
  /** Normal closure, also used for the pre-auth idle timeout. */
  NORMAL: 1e3,
  /** Protocol version mismatch. */
  PROTOCOL_ERROR: 1002,
  /** Policy violation: bad handshake, auth failure, slow consumer, flood. */
  POLICY: 1008,
  /** A frame was larger than the limit in force. */
  TOO_BIG: 1009,
  /** The gateway is restarting or shutting down. */
  SERVICE_RESTART: 1012,
  /** The client heard nothing for 2 × tickIntervalMs (client side). */
  TICK_TIMEOUT: 4e3,
  /** The shared secret changed since this socket authenticated. */
  AUTH_CHANGED: 4001
};
var ErrorCode = {
  /** A channel account is not linked (logged in) yet. */
  NOT_LINKED: "NOT_LINKED",
  /** The device must be paired first; `details.requestId` names the request. */
  NOT_PAIRED: "NOT_PAIRED",
  /** An agent run did not finish in time. */
  AGENT_TIMEOUT: "AGENT_TIMEOUT",
  /** The request was malformed; the message names the field. */
  INVALID_REQUEST: "INVALID_REQUEST",
  /** No pending approval has that id. */
  APPROVAL_NOT_FOUND: "APPROVAL_NOT_FOUND",
  /** The gateway cannot serve this now (see `retryable` and `retryAfterMs`). */
  UNAVAILABLE: "UNAVAILABLE",
  /** Protocol 4 only: a scope or role check failed. */
  FORBIDDEN: "FORBIDDEN"
};
var Scope = {
  /** Everything, including config writes and pairing approvals. */
  ADMIN: "operator.admin",
  /** Read state: health, status, sessions, history, config (redacted). */
  READ: "operator.read",
  /** Send messages and run agents. */
  WRITE: "operator.write",
  /** Resolve exec approval requests. */
  APPROVALS: "operator.approvals",
  /** Approve devices and nodes. */
  PAIRING: "operator.pairing",
  /** Answer questions an agent asks. */
  QUESTIONS: "operator.questions",
  /** Talk mode and speech. */
  TALK: "operator.talk",
  /** Talk settings including provider secrets. */
  TALK_SECRETS: "operator.talk.secrets"
};
var DEFAULT_OPERATOR_SCOPES = [
  Scope.ADMIN,
  Scope.READ,
  Scope.WRITE,
  Scope.APPROVALS,
  Scope.QUESTIONS,
  Scope.PAIRING,
  Scope.TALK_SECRETS
];

// lib/version.ts
var VERSION = "0.1.0";

// lib/client/client.ts
var GatewayRequestError = class extends Error {
  /** Always `"GatewayRequestError"`. */
  name = "GatewayRequestError";
  /** The error code, for example `INVALID_REQUEST`. */
  code;
  /** Structured details, such as `details.code` on connect failures. */
  details;
  /** Whether the gateway says a retry may succeed. */
  retryable;
  /** How long the gateway asks to wait before retrying. */
  retryAfterMs;
  /** The payload, when a (final) error response carried one. */
  payload;
  /** The method that failed. */
  method;
  /** Builds the error from the wire's error shape. */
  constructor(error, options = {}) {
    super(`${options.method ?? "request"} failed: ${error.message} (${error.code})`);
    this.code = error.code;
    this.details = error.details;
    this.retryable = error.retryable;
    this.retryAfterMs = error.retryAfterMs;
    this.payload = options.payload;
    this.method = options.method;
  }
};
var GatewayConnectError = class extends Error {
  /** Always `"GatewayConnectError"`. */
  name = "GatewayConnectError";
  /** The close code, when the socket closed. */
  closeCode;
  /** The close reason, when the socket closed. */
  closeReason;
  /** Creates the error; `cause` is the underlying error, if any. */
  constructor(message, options = {}) {
    super(message, "cause" in options ? {
      cause: options.cause
    } : void 0);
    this.closeCode = options.closeCode;
    this.closeReason = options.closeReason;
  }
};
var GatewayTimeoutError = class extends Error {
  /** Always `"GatewayTimeoutError"`. */
  name = "GatewayTimeoutError";
  /** The method that timed out. */
  method;
  /** The timeout that ran out. */
  timeoutMs;
  /** Creates the error for `method` after `timeoutMs`. */
  constructor(method, timeoutMs) {
    super(`${method}: expected a response within ${timeoutMs} ms, got none`);
    this.method = method;
    this.timeoutMs = timeoutMs;
  }
};
function _deferred() {
  let resolve, reject;
  const promise = new Promise((res, rej) => (resolve = res, reject = rej));
  return {
    promise,
    resolve,
    reject
  };
}
var _decoder = new TextDecoder();
var GatewayClient = class {
  #url;
  #WS;
  #base;
  #auth;
  #signDevice;
  #deviceTokens;
  #useDeviceToken;
  #reconnect;
  #requestTimeoutMs;
  #connectTimeoutMs;
  #ws;
  #sockets = /* @__PURE__ */ new Set();
  #state = "closed";
  #hello;
  #handshake;
  #challenged = false;
  #connectError;
  #forgetting;
  #pending = /* @__PURE__ */ new Map();
  #listeners = /* @__PURE__ */ new Map();
  #stateHandlers = /* @__PURE__ */ new Set();
  #gapHandlers = /* @__PURE__ */ new Set();
  #nextId = 0;
  #lastSeq;
  #userClosed = false;
  #retry = false;
  #attempt = 0;
  #connectTimer;
  #watchdog;
  #reconnectTimer;
  /** Creates a client; nothing happens on the network until {@link connect}. */
  constructor(options) {
    this.#url = String(options.url);
    this.#WS = options.WebSocket ?? globalThis.WebSocket;
    const client = Object.fromEntries(Object.entries(options.client ?? {}).filter(([, v]) => v !== void 0));
    this.#base = {
      minProtocol: options.minProtocol ?? 3,
      maxProtocol: options.maxProtocol ?? 4,
      client: {
        id: "cli",
        mode: "cli",
        version: `gw-${VERSION}`,
        platform: _platform(),
        ...client
      },
      role: options.role ?? "operator",
      scopes: [
        ...options.scopes ?? DEFAULT_OPERATOR_SCOPES
      ]
    };
    if (options.token !== void 0 || options.password !== void 0) {
      this.#auth = {};
      if (options.token !== void 0) this.#auth.token = options.token;
      if (options.password !== void 0) this.#auth.password = options.password;
    }
    this.#signDevice = options.signDevice;
    this.#deviceTokens = options.deviceTokens;
    this.#useDeviceToken = options.useDeviceToken ?? false;
    const r = options.reconnect;
    if (r) {
      const o = r === true ? {} : r;
      this.#reconnect = {
        initialDelayMs: o.initialDelayMs ?? 500,
        maxDelayMs: o.maxDelayMs ?? 3e4,
        factor: o.factor ?? 2,
        jitter: o.jitter ?? 0.3
      };
    }
    this.#requestTimeoutMs = options.requestTimeoutMs ?? 3e4;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 1e4;
  }
  /** The current connection state. */
  get state() {
    return this.#state;
  }
  /** The last hello-ok payload, kept after a disconnect. */
  get hello() {
    return this.#hello;
  }
  /** The negotiated protocol version of the last hello-ok. */
  get protocol() {
    return this.#hello?.protocol;
  }
  /** The limits the gateway announced in the last hello-ok. */
  get policy() {
    return this.#hello?.policy;
  }
  /**
   * Opens the socket and runs the handshake. Resolves with hello-ok; rejects
   * with {@link GatewayRequestError} when the gateway refuses the connect, or
   * {@link GatewayConnectError} when the socket fails or closes first. A
   * failed first connect is not retried; reconnects start after a hello-ok.
   */
  connect() {
    if (!this.#userClosed) {
      if (this.#state === "connected" && this.#hello) return Promise.resolve(this.#hello);
      if (this.#handshake) return this.#handshake.promise;
    } else if (this.#ws) this.#gone(this.#ws, CloseCode.NORMAL, "closed by client");
    if (this.#state !== "reconnecting") this.#retry = false;
    this.#userClosed = false;
    clearTimeout(this.#reconnectTimer);
    return this.#open(this.#state === "reconnecting" ? "reconnecting" : "connecting");
  }
  /**
   * Sends a request and resolves with the first response's payload; later
   * responses with the same id are ignored. Params and result are typed for
   * the methods in {@link MethodMap}, `unknown` for others.
   *
   * @example
   * ```ts ignore
   * import { GatewayClient } from "@gw/gw";
   * const client = new GatewayClient({ url: "ws://127.0.0.1:18789", token: "secret" });
   * await client.connect();
   * const { sessions } = await client.request("sessions.list", { limit: 5 });
   * for (const s of sessions) console.log(s.key, s.updatedAt);
   * await client.close();
   * ```
   */
  request(method, params, opts) {
    return this.#request(method, params, opts, false);
  }
  /**
   * Like {@link request}, for methods that first answer
   * `{status:"accepted"}` and later send a final response with the same id
   * (such as `agent`): skips the ack and resolves with the final payload.
   *
   * @example
   * ```ts ignore
   * import { GatewayClient } from "@gw/gw";
   * const client = new GatewayClient({ url: "ws://127.0.0.1:18789", token: "secret" });
   * await client.connect();
   * const final = await client.requestFinal(
   *   "agent",
   *   { message: "Summarize my day", idempotencyKey: crypto.randomUUID() },
   *   { timeoutMs: 120_000 },
   * );
   * console.log(final.result.payloads.map((p) => p.text).join("\n"));
   * await client.close();
   * ```
   */
  requestFinal(method, params, opts) {
    return this.#request(method, params, opts, true);
  }
  /**
   * Subscribes to an event by name, or to all events with `"*"`; returns the
   * unsubscriber. Subscribe before the request that causes the events.
   *
   * @example
   * ```ts ignore
   * import { type ChatEvent, GatewayClient } from "@gw/gw";
   * const client = new GatewayClient({ url: "ws://127.0.0.1:18789", token: "secret" });
   * await client.connect();
   * const off = client.on("chat", (payload) => {
   *   const e = payload as ChatEvent;
   *   if (e.state === "delta") console.log(e.deltaText);
   * });
   * await client.request("chat.send", {
   *   sessionKey: "main",
   *   message: "hello",
   *   idempotencyKey: crypto.randomUUID(),
   * });
   * // ... later
   * off();
   * await client.close();
   * ```
   */
  on(event, handler) {
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, set = /* @__PURE__ */ new Set());
    set.add(handler);
    return () => void set.delete(handler);
  }
  /** Subscribes to state changes; returns the unsubscriber. */
  onState(handler) {
    this.#stateHandlers.add(handler);
    return () => void this.#stateHandlers.delete(handler);
  }
  /** Subscribes to event `seq` gaps (missed events); returns the unsubscriber. */
  onGap(handler) {
    this.#gapHandlers.add(handler);
    return () => void this.#gapHandlers.delete(handler);
  }
  /**
   * Closes the connection and stops reconnecting. Idempotent; resolves once
   * every socket this client opened has closed. Browsers accept only code
   * 1000 or 3000-4999.
   */
  close(code = CloseCode.NORMAL, reason = "") {
    this.#userClosed = true;
    clearTimeout(this.#reconnectTimer);
    const ws = this.#ws;
    if (ws) ws.close(code, reason);
    else this.#setState("closed");
    return Promise.all(this.#sockets).then(() => {
    });
  }
  #open(state) {
    this.#setState(state);
    const hs = _deferred();
    this.#handshake = hs;
    this.#connectError = void 0;
    this.#challenged = false;
    let ws;
    try {
      ws = new this.#WS(this.#url);
    } catch (cause) {
      this.#handshake = void 0;
      this.#retry = false;
      const err = new GatewayConnectError(`Cannot open a WebSocket to ${this.#url}`, {
        cause
      });
      this.#setState("closed", err);
      hs.reject(err);
      return hs.promise;
    }
    ws.binaryType = "arraybuffer";
    this.#ws = ws;
    const closed = new Promise((resolve) => {
      ws.onclose = (e) => {
        resolve();
        this.#gone(ws, e.code, e.reason);
      };
    });
    this.#sockets.add(closed);
    void closed.then(() => this.#sockets.delete(closed));
    ws.onerror = () => {
    };
    ws.onmessage = (e) => this.#onData(ws, e.data);
    const ms = this.#connectTimeoutMs;
    this.#connectTimer = setTimeout(() => {
      const err = new GatewayConnectError(`Expected hello-ok within ${ms} ms, got none`);
      this.#abort(ws, CloseCode.NORMAL, "connect timeout", err);
    }, ms);
    return hs.promise;
  }
  /** Forgets a socket at once (it may still be closing) and closes it. */
  #abort(ws, code, reason, error) {
    this.#gone(ws, code, reason, error);
    try {
      ws.close(code, reason);
    } catch {
    }
  }
  /** The single cleanup path of a socket: fail what waits on it, then reconnect or stop. */
  #gone(ws, code, reason, error) {
    if (ws !== this.#ws) return;
    this.#ws = void 0;
    clearTimeout(this.#connectTimer);
    clearTimeout(this.#watchdog);
    const err = error ?? new GatewayConnectError(`Gateway connection closed (code ${code}${reason ? `, ${reason}` : ""})`, {
      closeCode: code,
      closeReason: reason
    });
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
    const cause = this.#connectError ?? err;
    const hs = this.#handshake;
    this.#handshake = void 0;
    const fatal = this.#userClosed || !this.#reconnect || !this.#retry || _isFatal(this.#connectError);
    if (fatal) {
      this.#retry = false;
      this.#setState("closed", this.#userClosed ? void 0 : cause);
    } else {
      const wait = this.#connectError?.retryAfterMs ?? 0;
      const delay = Math.max(wait, _backoff(this.#attempt++, this.#reconnect));
      this.#setState("reconnecting", cause);
      this.#reconnectTimer = setTimeout(() => void this.#open("reconnecting").catch(() => {
      }), delay);
    }
    const forgetting = this.#forgetting;
    this.#forgetting = void 0;
    if (forgetting) void forgetting.then(() => hs?.reject(cause));
    else hs?.reject(cause);
  }
  #onData(ws, data) {
    if (typeof data === "string") this.#onText(ws, data);
    else if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) {
      this.#onText(ws, _decoder.decode(data));
    } else if (typeof Blob !== "undefined" && data instanceof Blob) {
      void data.text().then((text) => this.#onText(ws, text));
    }
  }
  #onText(ws, text) {
    if (ws !== this.#ws) return;
    if (this.#state === "connected") this.#armWatchdog(ws);
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    if (!frame || typeof frame !== "object") return;
    const f = frame;
    if (f.type === "res" && typeof f.id === "string") this.#onResponse(f);
    else if (f.type === "event" && typeof f.event === "string") this.#onEvent(ws, f);
  }
  #onResponse(frame) {
    const p = this.#pending.get(frame.id);
    if (!p) return;
    const status = frame.payload?.status;
    if (p.final && frame.ok && status === "accepted") return;
    this.#pending.delete(frame.id);
    if (frame.ok) p.resolve(frame.payload);
    else {
      const shape = frame.error ?? {
        code: "UNAVAILABLE",
        message: "no error given"
      };
      p.reject(new GatewayRequestError(shape, {
        method: p.method,
        payload: frame.payload
      }));
    }
  }
  #onEvent(ws, frame) {
    if (frame.event === "connect.challenge" && this.#handshake && !this.#challenged) {
      this.#challenged = true;
      void this.#sendConnect(ws, frame.payload);
    }
    if (typeof frame.seq === "number") {
      const last = this.#lastSeq;
      if (last !== void 0 && frame.seq > last + 1) {
        const gap = {
          expected: last + 1,
          received: frame.seq
        };
        for (const h of this.#gapHandlers) _call(h, gap);
      }
      if (last === void 0 || frame.seq > last) this.#lastSeq = frame.seq;
    }
    for (const h of this.#listeners.get(frame.event) ?? []) _call(h, frame.payload, frame);
    for (const h of this.#listeners.get("*") ?? []) _call(h, frame.payload, frame);
  }
  async #sendConnect(ws, challenge) {
    let sentDeviceToken = false;
    try {
      const params = {
        ...this.#base,
        client: {
          ...this.#base.client
        },
        scopes: [
          ...this.#base.scopes
        ]
      };
      if (this.#auth) params.auth = {
        ...this.#auth
      };
      if (this.#useDeviceToken && this.#deviceTokens) {
        const stored = await this.#deviceTokens.loadToken(this.#url).catch(() => null);
        if (stored?.token && stored.role === params.role) {
          params.auth = {
            deviceToken: stored.token
          };
          sentDeviceToken = true;
        }
      }
      const device = await this.#signDevice?.(challenge, params);
      if (device) params.device = device;
      if (ws !== this.#ws) return;
      const hello = await this.#call(ws, "connect", params, false, {
        timeoutMs: 0
      });
      await this.#saveDeviceToken(hello, params);
      if (ws !== this.#ws) return;
      clearTimeout(this.#connectTimer);
      this.#hello = hello;
      this.#attempt = 0;
      this.#retry = true;
      this.#lastSeq = hello.protocol >= 4 ? 0 : void 0;
      const hs = this.#handshake;
      this.#handshake = void 0;
      this.#setState("connected");
      this.#armWatchdog(ws);
      hs?.resolve(hello);
    } catch (e) {
      if (ws !== this.#ws) return;
      if (e instanceof GatewayRequestError) {
        this.#connectError = e;
        if (sentDeviceToken && _isAuthFailure(e) && this.#deviceTokens) {
          this.#forgetting = this.#deviceTokens.clearToken(this.#url).catch(() => {
          });
        }
        ws.close(CloseCode.NORMAL);
      } else {
        const err = new GatewayConnectError("The connect handshake failed", {
          cause: e
        });
        this.#abort(ws, CloseCode.NORMAL, "handshake failed", err);
      }
    }
  }
  /** Keep a device token hello-ok carries, when there is somewhere to keep it. */
  async #saveDeviceToken(hello, params) {
    const auth = hello.auth;
    const token = auth?.deviceToken;
    if (!this.#deviceTokens || typeof token !== "string" || !token) return;
    const role = typeof auth?.deviceTokenRole === "string" ? auth.deviceTokenRole : auth?.role ?? params.role ?? "operator";
    const scopes = Array.isArray(auth?.deviceTokenScopes) ? auth.deviceTokenScopes : Array.isArray(auth?.scopes) ? auth.scopes : params.scopes ?? [];
    const issuedAtMs = typeof auth?.issuedAtMs === "number" ? auth.issuedAtMs : Date.now();
    await this.#deviceTokens.saveToken(this.#url, {
      token,
      role,
      scopes: [
        ...scopes
      ],
      issuedAtMs
    }).catch(() => {
    });
  }
  #armWatchdog(ws) {
    const tick = this.#hello?.policy?.tickIntervalMs;
    if (!tick || tick <= 0) return;
    clearTimeout(this.#watchdog);
    this.#watchdog = setTimeout(() => this.#abort(ws, CloseCode.TICK_TIMEOUT, "tick timeout"), tick * 2);
  }
  #request(method, params, opts = {}, final) {
    const ws = this.#ws;
    if (!ws || this.#state !== "connected") {
      const err = new GatewayConnectError(`Cannot send ${method}: the client is ${this.#state}`);
      return Promise.reject(err);
    }
    return this.#call(ws, method, params, final, opts);
  }
  #call(ws, method, params, final, opts) {
    const { signal } = opts;
    const timeoutMs = opts.timeoutMs ?? this.#requestTimeoutMs;
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const id = `${++this.#nextId}:${_randomId()}`;
      let timer;
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        this.#pending.delete(id);
      };
      const onAbort = () => {
        done();
        reject(signal?.reason);
      };
      this.#pending.set(id, {
        method,
        final,
        resolve: (v) => (done(), resolve(v)),
        reject: (e) => (done(), reject(e))
      });
      if (timeoutMs > 0 && Number.isFinite(timeoutMs)) {
        timer = setTimeout(() => {
          done();
          reject(new GatewayTimeoutError(method, timeoutMs));
        }, timeoutMs);
      }
      signal?.addEventListener("abort", onAbort, {
        once: true
      });
      const frame = {
        type: "req",
        id,
        method
      };
      if (params !== void 0) frame.params = params;
      try {
        ws.send(JSON.stringify(frame));
      } catch (cause) {
        done();
        reject(new GatewayConnectError(`Cannot send ${method}`, {
          cause
        }));
      }
    });
  }
  #setState(state, error) {
    if (state === this.#state && !error) return;
    this.#state = state;
    for (const h of this.#stateHandlers) _call(h, state, error);
  }
};
function _call(fn, ...args) {
  try {
    fn(...args);
  } catch (e) {
    queueMicrotask(() => {
      throw e;
    });
  }
}
function _isFatal(error) {
  const code = error?.details?.code;
  if (typeof code !== "string") return false;
  return code.startsWith("AUTH_") && code !== "AUTH_RATE_LIMITED" || code === "PROTOCOL_MISMATCH";
}
function _isAuthFailure(error) {
  const code = error.details?.code;
  return typeof code === "string" && code.startsWith("AUTH_") && code !== "AUTH_RATE_LIMITED";
}
function _backoff(attempt, o) {
  const base = Math.min(o.maxDelayMs, o.initialDelayMs * o.factor ** attempt);
  const spread = base * o.jitter * (Math.random() * 2 - 1);
  return Math.max(0, Math.min(o.maxDelayMs, Math.round(base + spread)));
}
function _randomId() {
  const c = globalThis.crypto;
  return c?.randomUUID?.() ?? Math.random().toString(36).slice(2);
}
function _platform() {
  const g = globalThis;
  if (typeof g.Deno !== "undefined" && g.Deno.build?.os) return g.Deno.build.os;
  return g.navigator?.platform || "unknown";
}

// lib/protocol/device_auth.ts
function normDeviceField(s) {
  return (s ?? "").trim().replace(/[A-Z]/g, (c) => c.toLowerCase());
}
function devicePayload(version, deviceId, f, signedAt, nonce) {
  const base = [
    version,
    deviceId,
    f.clientId,
    f.clientMode,
    f.role,
    f.scopes.join(","),
    String(signedAt),
    f.token,
    nonce
  ];
  return (version === "v3" ? [
    ...base,
    normDeviceField(f.platform),
    normDeviceField(f.deviceFamily)
  ] : base).join("|");
}
function fromB64url(s) {
  if (!/^[A-Za-z0-9_\-+/]*={0,2}$/.test(s)) return null;
  const b64 = s.replace(/-/g, "+").replace(/_/g, "/");
  try {
    const bin = atob(b64 + "=".repeat((4 - b64.length % 4) % 4));
    return Uint8Array.from(bin, (c) => c.charCodeAt(0));
  } catch {
    return null;
  }
}
function toB64url(b) {
  let s = "";
  for (const x of b) s += String.fromCharCode(x);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
async function sha256Hex(bytes) {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

// lib/client/identity.ts
var IdentityError = class extends Error {
  /** Always `"IdentityError"`. */
  name = "IdentityError";
  /** Creates the error; `cause` is the underlying error, if any. */
  constructor(message, options) {
    super(message, options);
  }
};
function deviceAuthPayload(deviceId, p) {
  return devicePayload("v3", deviceId, p, p.challenge.ts, p.challenge.nonce);
}
function signedToken(auth) {
  return auth?.token ?? auth?.deviceToken ?? auth?.bootstrapToken ?? "";
}
var DeviceIdentity = class _DeviceIdentity {
  /** Lowercase hex SHA-256 of the raw public key. */
  deviceId;
  /** The raw public key, base64url without padding. */
  publicKey;
  /** When the key was made, epoch ms. */
  createdAtMs;
  #key;
  #pkcs8;
  constructor(stored, key) {
    this.deviceId = stored.deviceId;
    this.publicKey = stored.publicKey;
    this.createdAtMs = stored.createdAtMs;
    this.#pkcs8 = stored.privateKey;
    this.#key = key;
  }
  /** Make a new key pair. */
  static async generate() {
    const pair = await crypto.subtle.generateKey({
      name: "Ed25519"
    }, true, [
      "sign",
      "verify"
    ]);
    const raw = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
    const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", pair.privateKey));
    const stored = {
      version: 1,
      deviceId: await sha256Hex(raw),
      publicKey: toB64url(raw),
      privateKey: toB64url(pkcs8),
      createdAtMs: Date.now()
    };
    return new _DeviceIdentity(stored, pair.privateKey);
  }
  /**
   * Load a stored identity, checking that the private key, public key and id
   * belong together.
   *
   * @throws {IdentityError} when it is malformed or inconsistent.
   */
  static async fromJSON(stored) {
    const s = stored;
    if (!s || typeof s !== "object" || s.version !== 1) {
      throw new IdentityError(`device identity: expected version 1, got ${JSON.stringify(s?.version)}`);
    }
    for (const k of [
      "deviceId",
      "publicKey",
      "privateKey"
    ]) {
      if (typeof s[k] !== "string" || !s[k]) {
        throw new IdentityError(`device identity: ${k}: expected a string, got ${typeof s[k]}`);
      }
    }
    const der = fromB64url(stored.privateKey);
    if (!der) throw new IdentityError("device identity: privateKey is not base64url");
    let key, x;
    try {
      const extractable = await crypto.subtle.importKey("pkcs8", der, {
        name: "Ed25519"
      }, true, [
        "sign"
      ]);
      x = (await crypto.subtle.exportKey("jwk", extractable)).x;
      key = await crypto.subtle.importKey("pkcs8", der, {
        name: "Ed25519"
      }, false, [
        "sign"
      ]);
    } catch (cause) {
      throw new IdentityError("device identity: privateKey is not a PKCS #8 Ed25519 key", {
        cause
      });
    }
    const raw = fromB64url(stored.publicKey);
    if (!raw || raw.length !== 32 || x !== toB64url(raw)) {
      throw new IdentityError("device identity: publicKey does not match privateKey");
    }
    if (await sha256Hex(raw) !== stored.deviceId) {
      throw new IdentityError("device identity: deviceId is not the SHA-256 of publicKey");
    }
    const createdAtMs = typeof s.createdAtMs === "number" ? s.createdAtMs : 0;
    return new _DeviceIdentity({
      ...stored,
      publicKey: toB64url(raw),
      createdAtMs
    }, key);
  }
  /** The identity to store (it holds the private key: keep it private). */
  toJSON() {
    return {
      version: 1,
      deviceId: this.deviceId,
      publicKey: this.publicKey,
      privateKey: this.#pkcs8,
      createdAtMs: this.createdAtMs
    };
  }
  /** Sign the v3 payload for one connect; the result is the connect's `device` field. */
  async sign(params) {
    const payload = new TextEncoder().encode(deviceAuthPayload(this.deviceId, params));
    const sig = new Uint8Array(await crypto.subtle.sign("Ed25519", this.#key, payload));
    return {
      id: this.deviceId,
      publicKey: this.publicKey,
      signature: toB64url(sig),
      signedAt: params.challenge.ts,
      nonce: params.challenge.nonce
    };
  }
};
async function loadOrCreateIdentity(storage) {
  const stored = await storage.load();
  if (stored) return await DeviceIdentity.fromJSON(stored);
  const identity = await DeviceIdentity.generate();
  await storage.save(identity.toJSON());
  return identity;
}
function deviceAuthHook(identity) {
  let loading = identity instanceof DeviceIdentity ? Promise.resolve(identity) : void 0;
  return async (challenge, params) => {
    if (!loading) {
      loading = loadOrCreateIdentity(identity);
      loading.catch(() => loading = void 0);
    }
    const id = await loading;
    return await id.sign({
      challenge,
      clientId: params.client.id,
      clientMode: params.client.mode,
      role: params.role ?? "operator",
      scopes: params.scopes ?? [],
      token: signedToken(params.auth),
      platform: params.client.platform,
      deviceFamily: params.client.deviceFamily
    });
  };
}
function gatewayKey(url) {
  try {
    return new URL(String(url)).href;
  } catch {
    return String(url);
  }
}
var MemoryIdentityStorage = class {
  #identity = null;
  #tokens = /* @__PURE__ */ new Map();
  /** The stored identity, or null. */
  load() {
    return Promise.resolve(this.#identity && structuredClone(this.#identity));
  }
  /** Keep `identity`. */
  save(identity) {
    this.#identity = structuredClone(identity);
    return Promise.resolve();
  }
  /** The token of `url`, or null. */
  loadToken(url) {
    const t = this.#tokens.get(gatewayKey(url));
    return Promise.resolve(t ? structuredClone(t) : null);
  }
  /** Keep `token` for `url`. */
  saveToken(url, token) {
    this.#tokens.set(gatewayKey(url), structuredClone(token));
    return Promise.resolve();
  }
  /** Forget the token of `url`. */
  clearToken(url) {
    this.#tokens.delete(gatewayKey(url));
    return Promise.resolve();
  }
};
function _idbResult(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}
var IndexedDbIdentityStorage = class _IndexedDbIdentityStorage {
  #name;
  #db;
  static #STORE = "kv";
  /** Uses the database `name`. @default {"gw-identity"} */
  constructor(name = "gw-identity") {
    this.#name = name;
  }
  #open() {
    if (!this.#db) {
      const idb = globalThis.indexedDB;
      if (!idb) return Promise.reject(new IdentityError("IndexedDB is not available here"));
      const req = idb.open(this.#name, 1);
      req.onupgradeneeded = () => {
        const db = req.result;
        const store = _IndexedDbIdentityStorage.#STORE;
        if (!db.objectStoreNames.contains(store)) db.createObjectStore(store);
      };
      this.#db = _idbResult(req);
      this.#db.catch(() => this.#db = void 0);
    }
    return this.#db;
  }
  async #run(mode, op) {
    const store = _IndexedDbIdentityStorage.#STORE;
    const db = await this.#open();
    return await _idbResult(op(db.transaction(store, mode).objectStore(store)));
  }
  /** The stored identity, or null. */
  async load() {
    return await this.#run("readonly", (s) => s.get("device")) ?? null;
  }
  /** Store `identity`. */
  async save(identity) {
    await this.#run("readwrite", (s) => s.put(identity, "device"));
  }
  /** The token of `url`, or null. */
  async loadToken(url) {
    const key = `token:${gatewayKey(url)}`;
    return await this.#run("readonly", (s) => s.get(key)) ?? null;
  }
  /** Store `token` for `url`. */
  async saveToken(url, token) {
    await this.#run("readwrite", (s) => s.put(token, `token:${gatewayKey(url)}`));
  }
  /** Forget the token of `url`. */
  async clearToken(url) {
    await this.#run("readwrite", (s) => s.delete(`token:${gatewayKey(url)}`));
  }
};
export {
  CloseCode,
  DEFAULT_OPERATOR_SCOPES,
  DeviceIdentity,
  ErrorCode,
  GatewayClient,
  GatewayConnectError,
  GatewayRequestError,
  GatewayTimeoutError,
  IdentityError,
  IndexedDbIdentityStorage,
  MIN_PROTOCOL_VERSION,
  MemoryIdentityStorage,
  PROTOCOL_VERSION,
  PROTOCOL_VERSIONS,
  Scope,
  deviceAuthHook,
  deviceAuthPayload,
  gatewayKey,
  loadOrCreateIdentity,
  signedToken
};
