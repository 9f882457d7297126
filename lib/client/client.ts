/**
 * `GatewayClient`: a dependency-free client for the OpenClaw Gateway WebSocket
 * protocol. It runs wherever a global `WebSocket` exists (Deno, browsers,
 * Node 22+, Bun) and handles the handshake, request/response matching, events
 * with `seq` gap detection, the tick watchdog and reconnects with backoff.
 *
 * @example
 * ```ts ignore
 * import { GatewayClient } from "@gw/gw";
 * const client = new GatewayClient({ url: "ws://127.0.0.1:18789", token: "secret" });
 * await client.connect();
 * console.log((await client.request("health")).ok);
 * await client.close();
 * ```
 *
 * @module
 */

import { CloseCode, DEFAULT_OPERATOR_SCOPES } from "../protocol/types.ts";
import { VERSION } from "../version.ts";
import type {
  ClientInfo,
  ConnectChallenge,
  ConnectParams,
  DeviceAuth,
  ErrorShape,
  EventFrame,
  HelloOk,
  ParamsOf,
  Policy,
  RequestFrame,
  ResponseFrame,
  ResultOf,
  Role,
} from "../protocol/types.ts";
import type { DeviceTokenStorage } from "./identity.ts";

/**
 * Backoff settings for automatic reconnects; every field has a default.
 *
 * @example
 * ```ts
 * import { GatewayClient, type ReconnectOptions } from "@gw/gw";
 * const reconnect: ReconnectOptions = { initialDelayMs: 1000, maxDelayMs: 60_000 };
 * const client = new GatewayClient({ url: "ws://127.0.0.1:18789", token: "secret", reconnect });
 * console.log(client.state); // closed (nothing happens before connect())
 * ```
 */
export interface ReconnectOptions {
  /** Delay before the first attempt. @default {500} */
  initialDelayMs?: number;
  /** Upper bound of any delay. @default {30000} */
  maxDelayMs?: number;
  /** Growth of the delay per failed attempt. @default {2} */
  factor?: number;
  /** Random spread as a fraction of the delay (0.3 means ±30 %). @default {0.3} */
  jitter?: number;
}

/**
 * Options of {@link GatewayClient}. Only `url` is required; a gateway also
 * wants credentials (`token` or `password`, or a device token).
 *
 * @example
 * ```ts
 * import { type GatewayClientOptions, Scope } from "@gw/gw";
 * const options: GatewayClientOptions = {
 *   url: "ws://127.0.0.1:18789",
 *   token: "secret",
 *   scopes: [Scope.READ, Scope.WRITE],
 *   client: { displayName: "kitchen tablet" },
 *   reconnect: true,
 *   requestTimeoutMs: 10_000,
 * };
 * console.log(options.url);
 * ```
 */
export interface GatewayClientOptions {
  /** Gateway URL, for example `ws://127.0.0.1:18789`. */
  url: string | URL;
  /** Shared token, sent as `auth.token`. */
  token?: string | undefined;
  /** Shared password, sent as `auth.password`. */
  password?: string | undefined;
  /**
   * Overrides of the `client` block. Defaults: id `"cli"`, mode `"cli"`,
   * version `"gw-<version>"`, platform from `Deno.build.os` or
   * `navigator.platform`, else `"unknown"`.
   */
  client?: Partial<ClientInfo>;
  /** Connection role. @default {"operator"} */
  role?: Role;
  /** Requested scopes. @default {DEFAULT_OPERATOR_SCOPES} */
  scopes?: readonly string[];
  /** Lowest protocol version offered. @default {3} */
  minProtocol?: number;
  /** Highest protocol version offered. @default {4} */
  maxProtocol?: number;
  /**
   * Device-identity hook, called once the challenge arrives on every
   * handshake; what it returns is sent as `params.device`.
   */
  signDevice?:
    | ((challenge: ConnectChallenge, params: ConnectParams) => Promise<DeviceAuth | undefined>)
    | undefined;
  /**
   * Where device tokens are kept, per gateway URL: a `hello-ok.auth.deviceToken`
   * is saved there (with its role, scopes and issue time) before
   * {@link GatewayClient.connect} resolves. A failed save is ignored.
   */
  deviceTokens?: DeviceTokenStorage | undefined;
  /**
   * When `deviceTokens` holds a token for this URL and role, connect with it
   * (`auth.deviceToken`) instead of `token`/`password`. The gateway takes a
   * device token only with a signed device (`signDevice`) and for no more than
   * the token's scopes, so ask for those. When the gateway refuses the token
   * (an `AUTH_*` error), it is removed from `deviceTokens`, and the next
   * {@link GatewayClient.connect} uses `token`/`password` again.
   * @default {false}
   */
  useDeviceToken?: boolean;
  /** Reconnect after a connection that reached hello-ok drops. @default {false} */
  reconnect?: boolean | ReconnectOptions;
  /** Default timeout of a request; 0 means none. @default {30000} */
  requestTimeoutMs?: number;
  /** Timeout of the whole handshake (open, challenge, hello-ok). @default {10000} */
  connectTimeoutMs?: number;
  /** WebSocket constructor to use instead of the global one. */
  WebSocket?: new (url: string) => WebSocket;
}

/**
 * Options of one request.
 *
 * @example
 * ```ts ignore
 * import { GatewayClient } from "@gw/gw";
 * const client = new GatewayClient({ url: "ws://127.0.0.1:18789", token: "secret" });
 * await client.connect();
 * const stop = new AbortController();
 * const status = await client.request("status", {}, { timeoutMs: 5000, signal: stop.signal });
 * console.log(status.uptimeMs);
 * await client.close();
 * ```
 */
export interface RequestOptions {
  /** Overrides the client's `requestTimeoutMs`; 0 means none. */
  timeoutMs?: number;
  /** Rejects the request with the signal's reason when aborted. */
  signal?: AbortSignal;
}

/**
 * Connection state reported by {@link GatewayClient.onState}: `closed` until
 * {@link GatewayClient.connect}, `connected` after hello-ok, `reconnecting`
 * while waiting to try again after a drop.
 *
 * @example
 * ```ts
 * import type { ClientState } from "@gw/gw";
 * const online = (s: ClientState) => s === "connected";
 * console.log(online("reconnecting")); // false
 * ```
 */
export type ClientState = "connecting" | "connected" | "reconnecting" | "closed";
/**
 * Receives an event's payload and the whole frame.
 *
 * @example
 * ```ts
 * import type { ChatEvent, EventHandler } from "@gw/gw";
 * const onChat: EventHandler = (payload, frame) => {
 *   const e = payload as ChatEvent;
 *   console.log(frame.seq, e.state, e.deltaText ?? "");
 * };
 * onChat({ runId: "r", sessionKey: "main", seq: 1, state: "delta", deltaText: "Hi" }, {
 *   type: "event",
 *   event: "chat",
 *   seq: 12,
 * });
 * ```
 */
export type EventHandler = (payload: unknown, frame: EventFrame) => void;
/**
 * Receives a state and, after a drop or a failed attempt, the error behind it.
 *
 * @example
 * ```ts
 * import type { StateHandler } from "@gw/gw";
 * const log: StateHandler = (state, error) => console.log(state, error?.message ?? "");
 * log("reconnecting", new Error("Gateway connection closed (code 1012)"));
 * ```
 */
export type StateHandler = (state: ClientState, error?: Error) => void;
/**
 * A jump in event `seq`: events `expected` to `received - 1` never arrived.
 * After one, refetch whatever state you keep from events.
 *
 * @example
 * ```ts
 * import type { SeqGap } from "@gw/gw";
 * const missed = (gap: SeqGap) => gap.received - gap.expected;
 * console.log(missed({ expected: 10, received: 13 })); // 3
 * ```
 */
export interface SeqGap {
  /** The seq that should have come next. */
  expected: number;
  /** The seq that came. */
  received: number;
}

/**
 * The gateway answered a request with `ok:false`.
 *
 * @example
 * ```ts
 * import { GatewayRequestError } from "@gw/gw";
 * const err = new GatewayRequestError({ code: "UNAVAILABLE", message: "busy", retryable: true });
 * console.log(err.code, err.retryable); // UNAVAILABLE true
 * ```
 */
export class GatewayRequestError extends Error {
  /** Always `"GatewayRequestError"`. */
  override readonly name = "GatewayRequestError";
  /** The error code, for example `INVALID_REQUEST`. */
  readonly code: string;
  /** Structured details, such as `details.code` on connect failures. */
  readonly details: Record<string, unknown> | undefined;
  /** Whether the gateway says a retry may succeed. */
  readonly retryable: boolean | undefined;
  /** How long the gateway asks to wait before retrying. */
  readonly retryAfterMs: number | undefined;
  /** The payload, when a (final) error response carried one. */
  readonly payload: unknown;
  /** The method that failed. */
  readonly method: string | undefined;

  /** Builds the error from the wire's error shape. */
  constructor(error: ErrorShape, options: { method?: string; payload?: unknown } = {}) {
    super(`${options.method ?? "request"} failed: ${error.message} (${error.code})`);
    this.code = error.code;
    this.details = error.details;
    this.retryable = error.retryable;
    this.retryAfterMs = error.retryAfterMs;
    this.payload = options.payload;
    this.method = options.method;
  }
}

/**
 * The socket could not open, closed before the answer came, or the client is
 * not connected.
 *
 * @example
 * ```ts
 * import { GatewayConnectError } from "@gw/gw";
 * const err = new GatewayConnectError("closed", { closeCode: 1008, closeReason: "bad" });
 * console.log(err.closeCode); // 1008
 * ```
 */
export class GatewayConnectError extends Error {
  /** Always `"GatewayConnectError"`. */
  override readonly name = "GatewayConnectError";
  /** The close code, when the socket closed. */
  readonly closeCode: number | undefined;
  /** The close reason, when the socket closed. */
  readonly closeReason: string | undefined;

  /** Creates the error; `cause` is the underlying error, if any. */
  constructor(
    message: string,
    options: { closeCode?: number; closeReason?: string; cause?: unknown } = {},
  ) {
    super(message, "cause" in options ? { cause: options.cause } : undefined);
    this.closeCode = options.closeCode;
    this.closeReason = options.closeReason;
  }
}

/**
 * A request got no answer in time.
 *
 * @example
 * ```ts
 * import { GatewayTimeoutError } from "@gw/gw";
 * console.log(new GatewayTimeoutError("health", 50).message);
 * // health: expected a response within 50 ms, got none
 * ```
 */
export class GatewayTimeoutError extends Error {
  /** Always `"GatewayTimeoutError"`. */
  override readonly name = "GatewayTimeoutError";
  /** The method that timed out. */
  readonly method: string;
  /** The timeout that ran out. */
  readonly timeoutMs: number;

  /** Creates the error for `method` after `timeoutMs`. */
  constructor(method: string, timeoutMs: number) {
    super(`${method}: expected a response within ${timeoutMs} ms, got none`);
    this.method = method;
    this.timeoutMs = timeoutMs;
  }
}

interface _Pending {
  method: string;
  final: boolean;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

type _Timer = ReturnType<typeof setTimeout>;

interface _Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}

/** `Promise.withResolvers`, which older runtimes (Node 20, Safari < 17.4) lack. */
function _deferred<T>(): _Deferred<T> {
  let resolve!: (value: T) => void, reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => (resolve = res, reject = rej));
  return { promise, resolve, reject };
}

const _decoder = new TextDecoder();

/**
 * A client for the OpenClaw Gateway protocol: one WebSocket, the handshake,
 * requests matched to responses, events by name. Requests are typed by
 * {@link MethodMap}; errors are {@link GatewayRequestError} (the gateway said
 * no), {@link GatewayConnectError} (no connection) and
 * {@link GatewayTimeoutError}.
 *
 * On a gateway's own machine the shared token is enough for the CLI's client
 * id (`cli`, the default). From another machine, add a device identity
 * (`signDevice: deviceAuthHook(storage)`) and have an operator approve it.
 *
 * @example
 * ```ts ignore
 * import { GatewayClient } from "@gw/gw";
 * const client = new GatewayClient({ url: "ws://127.0.0.1:18789", token: "secret" });
 * const hello = await client.connect();
 * const off = client.on("tick", (payload) => console.log("tick", payload));
 * const health = await client.request("health");
 * console.log(hello.server.version, health.ok);
 * off();
 * await client.close();
 * ```
 */
export class GatewayClient {
  #url: string;
  #WS: new (url: string) => WebSocket;
  #base: ConnectParams;
  #auth: NonNullable<ConnectParams["auth"]> | undefined;
  #signDevice: GatewayClientOptions["signDevice"];
  #deviceTokens: DeviceTokenStorage | undefined;
  #useDeviceToken: boolean;
  #reconnect: Required<ReconnectOptions> | undefined;
  #requestTimeoutMs: number;
  #connectTimeoutMs: number;

  #ws: WebSocket | undefined;
  #sockets = new Set<Promise<void>>();
  #state: ClientState = "closed";
  #hello: HelloOk | undefined;
  #handshake: _Deferred<HelloOk> | undefined;
  #challenged = false;
  #connectError: GatewayRequestError | undefined;
  #forgetting: Promise<void> | undefined;
  #pending = new Map<string, _Pending>();
  #listeners = new Map<string, Set<EventHandler>>();
  #stateHandlers = new Set<StateHandler>();
  #gapHandlers = new Set<(gap: SeqGap) => void>();
  #nextId = 0;
  #lastSeq: number | undefined;
  #userClosed = false;
  #retry = false;
  #attempt = 0;
  #connectTimer: _Timer | undefined;
  #watchdog: _Timer | undefined;
  #reconnectTimer: _Timer | undefined;

  /** Creates a client; nothing happens on the network until {@link connect}. */
  constructor(options: GatewayClientOptions) {
    this.#url = String(options.url);
    this.#WS = options.WebSocket ?? globalThis.WebSocket;
    const client = Object.fromEntries(
      Object.entries(options.client ?? {}).filter(([, v]) => v !== undefined),
    );
    this.#base = {
      minProtocol: options.minProtocol ?? 3,
      maxProtocol: options.maxProtocol ?? 4,
      client: {
        id: "cli",
        mode: "cli",
        version: `gw-${VERSION}`,
        platform: _platform(),
        ...client,
      },
      role: options.role ?? "operator",
      scopes: [...(options.scopes ?? DEFAULT_OPERATOR_SCOPES)],
    };
    if (options.token !== undefined || options.password !== undefined) {
      this.#auth = {};
      if (options.token !== undefined) this.#auth.token = options.token;
      if (options.password !== undefined) this.#auth.password = options.password;
    }
    this.#signDevice = options.signDevice;
    this.#deviceTokens = options.deviceTokens;
    this.#useDeviceToken = options.useDeviceToken ?? false;
    const r = options.reconnect;
    if (r) {
      const o = r === true ? {} : r;
      this.#reconnect = {
        initialDelayMs: o.initialDelayMs ?? 500,
        maxDelayMs: o.maxDelayMs ?? 30_000,
        factor: o.factor ?? 2,
        jitter: o.jitter ?? 0.3,
      };
    }
    this.#requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
  }

  /** The current connection state. */
  get state(): ClientState {
    return this.#state;
  }
  /** The last hello-ok payload, kept after a disconnect. */
  get hello(): HelloOk | undefined {
    return this.#hello;
  }
  /** The negotiated protocol version of the last hello-ok. */
  get protocol(): number | undefined {
    return this.#hello?.protocol;
  }
  /** The limits the gateway announced in the last hello-ok. */
  get policy(): Policy | undefined {
    return this.#hello?.policy;
  }

  /**
   * Opens the socket and runs the handshake. Resolves with hello-ok; rejects
   * with {@link GatewayRequestError} when the gateway refuses the connect, or
   * {@link GatewayConnectError} when the socket fails or closes first. A
   * failed first connect is not retried; reconnects start after a hello-ok.
   */
  connect(): Promise<HelloOk> {
    if (!this.#userClosed) {
      if (this.#state === "connected" && this.#hello) return Promise.resolve(this.#hello);
      if (this.#handshake) return this.#handshake.promise;
    } else if (this.#ws) this.#gone(this.#ws, CloseCode.NORMAL, "closed by client"); // still closing
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
  request<M extends string>(
    method: M,
    params?: ParamsOf<M>,
    opts?: RequestOptions,
  ): Promise<ResultOf<M>> {
    return this.#request(method, params, opts, false) as Promise<ResultOf<M>>;
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
  requestFinal<M extends string>(
    method: M,
    params?: ParamsOf<M>,
    opts?: RequestOptions,
  ): Promise<ResultOf<M>> {
    return this.#request(method, params, opts, true) as Promise<ResultOf<M>>;
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
  on(event: string, handler: EventHandler): () => void {
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, set = new Set());
    set.add(handler);
    return () => void set.delete(handler);
  }

  /** Subscribes to state changes; returns the unsubscriber. */
  onState(handler: StateHandler): () => void {
    this.#stateHandlers.add(handler);
    return () => void this.#stateHandlers.delete(handler);
  }

  /** Subscribes to event `seq` gaps (missed events); returns the unsubscriber. */
  onGap(handler: (gap: SeqGap) => void): () => void {
    this.#gapHandlers.add(handler);
    return () => void this.#gapHandlers.delete(handler);
  }

  /**
   * Closes the connection and stops reconnecting. Idempotent; resolves once
   * every socket this client opened has closed. Browsers accept only code
   * 1000 or 3000-4999.
   */
  close(code: number = CloseCode.NORMAL, reason = ""): Promise<void> {
    this.#userClosed = true;
    clearTimeout(this.#reconnectTimer);
    const ws = this.#ws;
    if (ws) ws.close(code, reason);
    else this.#setState("closed");
    return Promise.all(this.#sockets).then(() => {});
  }

  #open(state: "connecting" | "reconnecting"): Promise<HelloOk> {
    this.#setState(state);
    const hs = _deferred<HelloOk>();
    this.#handshake = hs;
    this.#connectError = undefined;
    this.#challenged = false;
    let ws: WebSocket;
    try {
      ws = new this.#WS(this.#url);
    } catch (cause) {
      this.#handshake = undefined;
      this.#retry = false;
      const err = new GatewayConnectError(`Cannot open a WebSocket to ${this.#url}`, { cause });
      this.#setState("closed", err);
      hs.reject(err);
      return hs.promise;
    }
    ws.binaryType = "arraybuffer";
    this.#ws = ws;
    const closed = new Promise<void>((resolve) => {
      ws.onclose = (e) => {
        resolve();
        this.#gone(ws, e.code, e.reason);
      };
    });
    this.#sockets.add(closed);
    void closed.then(() => this.#sockets.delete(closed));
    ws.onerror = () => {}; // a close event always follows
    ws.onmessage = (e) => this.#onData(ws, e.data);
    const ms = this.#connectTimeoutMs;
    this.#connectTimer = setTimeout(() => {
      const err = new GatewayConnectError(`Expected hello-ok within ${ms} ms, got none`);
      this.#abort(ws, CloseCode.NORMAL, "connect timeout", err);
    }, ms);
    return hs.promise;
  }

  /** Forgets a socket at once (it may still be closing) and closes it. */
  #abort(ws: WebSocket, code: number, reason: string, error?: GatewayConnectError): void {
    this.#gone(ws, code, reason, error);
    try {
      ws.close(code, reason);
    } catch { /* already closed */ }
  }

  /** The single cleanup path of a socket: fail what waits on it, then reconnect or stop. */
  #gone(ws: WebSocket, code: number, reason: string, error?: GatewayConnectError): void {
    if (ws !== this.#ws) return;
    this.#ws = undefined;
    clearTimeout(this.#connectTimer);
    clearTimeout(this.#watchdog);
    const err = error ?? new GatewayConnectError(
      `Gateway connection closed (code ${code}${reason ? `, ${reason}` : ""})`,
      { closeCode: code, closeReason: reason },
    );
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
    const cause = this.#connectError ?? err;
    const hs = this.#handshake;
    this.#handshake = undefined;
    const fatal = this.#userClosed || !this.#reconnect || !this.#retry ||
      _isFatal(this.#connectError);
    if (fatal) {
      this.#retry = false;
      this.#setState("closed", this.#userClosed ? undefined : cause);
    } else {
      const wait = this.#connectError?.retryAfterMs ?? 0;
      const delay = Math.max(wait, _backoff(this.#attempt++, this.#reconnect!));
      this.#setState("reconnecting", cause);
      this.#reconnectTimer = setTimeout(
        () => void this.#open("reconnecting").catch(() => {}),
        delay,
      );
    }
    const forgetting = this.#forgetting;
    this.#forgetting = undefined;
    if (forgetting) void forgetting.then(() => hs?.reject(cause));
    else hs?.reject(cause);
  }

  #onData(ws: WebSocket, data: unknown): void {
    if (typeof data === "string") this.#onText(ws, data);
    else if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) {
      this.#onText(ws, _decoder.decode(data));
    } else if (typeof Blob !== "undefined" && data instanceof Blob) {
      void data.text().then((text) => this.#onText(ws, text));
    }
  }

  #onText(ws: WebSocket, text: string): void {
    if (ws !== this.#ws) return;
    if (this.#state === "connected") this.#armWatchdog(ws);
    let frame: unknown;
    try {
      frame = JSON.parse(text);
    } catch {
      return;
    }
    if (!frame || typeof frame !== "object") return;
    const f = frame as ResponseFrame | EventFrame;
    if (f.type === "res" && typeof f.id === "string") this.#onResponse(f);
    else if (f.type === "event" && typeof f.event === "string") this.#onEvent(ws, f);
  }

  #onResponse(frame: ResponseFrame): void {
    const p = this.#pending.get(frame.id);
    if (!p) return;
    const status = (frame.payload as { status?: unknown } | null | undefined)?.status;
    if (p.final && frame.ok && status === "accepted") return;
    this.#pending.delete(frame.id);
    if (frame.ok) p.resolve(frame.payload);
    else {
      const shape = frame.error ?? { code: "UNAVAILABLE", message: "no error given" };
      p.reject(new GatewayRequestError(shape, { method: p.method, payload: frame.payload }));
    }
  }

  #onEvent(ws: WebSocket, frame: EventFrame): void {
    if (frame.event === "connect.challenge" && this.#handshake && !this.#challenged) {
      this.#challenged = true;
      void this.#sendConnect(ws, frame.payload as ConnectChallenge);
    }
    if (typeof frame.seq === "number") {
      const last = this.#lastSeq;
      if (last !== undefined && frame.seq > last + 1) {
        const gap = { expected: last + 1, received: frame.seq };
        for (const h of this.#gapHandlers) _call(h, gap);
      }
      if (last === undefined || frame.seq > last) this.#lastSeq = frame.seq;
    }
    for (const h of this.#listeners.get(frame.event) ?? []) _call(h, frame.payload, frame);
    for (const h of this.#listeners.get("*") ?? []) _call(h, frame.payload, frame);
  }

  async #sendConnect(ws: WebSocket, challenge: ConnectChallenge): Promise<void> {
    let sentDeviceToken = false;
    try {
      const params: ConnectParams = {
        ...this.#base,
        client: { ...this.#base.client },
        scopes: [...this.#base.scopes!],
      };
      if (this.#auth) params.auth = { ...this.#auth };
      if (this.#useDeviceToken && this.#deviceTokens) {
        const stored = await this.#deviceTokens.loadToken(this.#url).catch(() => null);
        if (stored?.token && stored.role === params.role) {
          params.auth = { deviceToken: stored.token };
          sentDeviceToken = true;
        }
      }
      const device = await this.#signDevice?.(challenge, params);
      if (device) params.device = device;
      if (ws !== this.#ws) return;
      const hello = await this.#call(ws, "connect", params, false, { timeoutMs: 0 }) as HelloOk;
      await this.#saveDeviceToken(hello, params);
      if (ws !== this.#ws) return;
      clearTimeout(this.#connectTimer);
      this.#hello = hello;
      this.#attempt = 0;
      this.#retry = true;
      this.#lastSeq = hello.protocol >= 4 ? 0 : undefined;
      const hs = this.#handshake;
      this.#handshake = undefined;
      this.#setState("connected");
      this.#armWatchdog(ws);
      hs?.resolve(hello);
    } catch (e) {
      if (ws !== this.#ws) return;
      if (e instanceof GatewayRequestError) {
        // Settle only once the socket is gone, so a rejected connect leaves nothing open.
        this.#connectError = e;
        if (sentDeviceToken && _isAuthFailure(e) && this.#deviceTokens) {
          // The refused token is forgotten before connect() rejects.
          this.#forgetting = this.#deviceTokens.clearToken(this.#url).catch(() => {});
        }
        ws.close(CloseCode.NORMAL);
      } else {
        const err = new GatewayConnectError("The connect handshake failed", { cause: e });
        this.#abort(ws, CloseCode.NORMAL, "handshake failed", err);
      }
    }
  }

  /** Keep a device token hello-ok carries, when there is somewhere to keep it. */
  async #saveDeviceToken(hello: HelloOk, params: ConnectParams): Promise<void> {
    const auth = hello.auth as HelloOk["auth"] | undefined;
    const token = auth?.deviceToken;
    if (!this.#deviceTokens || typeof token !== "string" || !token) return;
    const role = typeof auth?.deviceTokenRole === "string"
      ? auth.deviceTokenRole
      : auth?.role ?? params.role ?? "operator";
    const scopes = Array.isArray(auth?.deviceTokenScopes)
      ? auth.deviceTokenScopes as string[]
      : Array.isArray(auth?.scopes)
      ? auth.scopes
      : params.scopes ?? [];
    const issuedAtMs = typeof auth?.issuedAtMs === "number" ? auth.issuedAtMs : Date.now();
    await this.#deviceTokens.saveToken(this.#url, { token, role, scopes: [...scopes], issuedAtMs })
      .catch(() => {});
  }

  #armWatchdog(ws: WebSocket): void {
    const tick = this.#hello?.policy?.tickIntervalMs;
    if (!tick || tick <= 0) return;
    clearTimeout(this.#watchdog);
    this.#watchdog = setTimeout(
      () => this.#abort(ws, CloseCode.TICK_TIMEOUT, "tick timeout"),
      tick * 2,
    );
  }

  #request(
    method: string,
    params: unknown,
    opts: RequestOptions = {},
    final: boolean,
  ): Promise<unknown> {
    const ws = this.#ws;
    if (!ws || this.#state !== "connected") {
      const err = new GatewayConnectError(`Cannot send ${method}: the client is ${this.#state}`);
      return Promise.reject(err);
    }
    return this.#call(ws, method, params, final, opts);
  }

  #call(
    ws: WebSocket,
    method: string,
    params: unknown,
    final: boolean,
    opts: RequestOptions,
  ): Promise<unknown> {
    const { signal } = opts;
    const timeoutMs = opts.timeoutMs ?? this.#requestTimeoutMs;
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const id = `${++this.#nextId}:${_randomId()}`;
      let timer: _Timer | undefined;
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
        reject: (e) => (done(), reject(e)),
      });
      if (timeoutMs > 0 && Number.isFinite(timeoutMs)) {
        timer = setTimeout(() => {
          done();
          reject(new GatewayTimeoutError(method, timeoutMs));
        }, timeoutMs);
      }
      signal?.addEventListener("abort", onAbort, { once: true });
      const frame: RequestFrame = { type: "req", id, method };
      if (params !== undefined) frame.params = params;
      try {
        ws.send(JSON.stringify(frame));
      } catch (cause) {
        done();
        reject(new GatewayConnectError(`Cannot send ${method}`, { cause }));
      }
    });
  }

  #setState(state: ClientState, error?: Error): void {
    if (state === this.#state && !error) return;
    this.#state = state;
    for (const h of this.#stateHandlers) _call(h, state, error);
  }
}

/** Calls a user handler; a throw is rethrown later so other handlers still run. */
function _call<A extends unknown[]>(fn: (...args: A) => void, ...args: A): void {
  try {
    fn(...args);
  } catch (e) {
    queueMicrotask(() => {
      throw e;
    });
  }
}

/** Auth failures that a retry cannot heal (rate limits heal by waiting). */
function _isFatal(error: GatewayRequestError | undefined): boolean {
  const code = error?.details?.code;
  if (typeof code !== "string") return false;
  return (code.startsWith("AUTH_") && code !== "AUTH_RATE_LIMITED") ||
    code === "PROTOCOL_MISMATCH";
}

/** A connect refused for its credentials (a wait for the rate limit is not one). */
function _isAuthFailure(error: GatewayRequestError): boolean {
  const code = error.details?.code;
  return typeof code === "string" && code.startsWith("AUTH_") && code !== "AUTH_RATE_LIMITED";
}

function _backoff(attempt: number, o: Required<ReconnectOptions>): number {
  const base = Math.min(o.maxDelayMs, o.initialDelayMs * o.factor ** attempt);
  const spread = base * o.jitter * (Math.random() * 2 - 1);
  return Math.max(0, Math.min(o.maxDelayMs, Math.round(base + spread)));
}

function _randomId(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  return c?.randomUUID?.() ?? Math.random().toString(36).slice(2);
}

function _platform(): string {
  const g = globalThis as {
    Deno?: { build?: { os?: string } };
    navigator?: { platform?: string };
  };
  if (typeof g.Deno !== "undefined" && g.Deno.build?.os) return g.Deno.build.os;
  return g.navigator?.platform || "unknown";
}
