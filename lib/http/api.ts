/**
 * gw's HTTP surface besides health and channel webhooks: the
 * OpenAI-compatible endpoints (`/v1/chat/completions`, `/v1/models`),
 * `/tools/invoke`, and webhooks (`/hooks/<name>`). Each is off until the
 * config turns it on, and a path that is off is not there (404).
 *
 * The first two take the gateway's own secret as `Authorization: Bearer
 * <token or password>`, which is full operator access; it is checked in
 * constant time before any body is read, and failures count toward the same
 * per-address lockout as WebSocket connects. Webhooks have a token of their
 * own (`hooks.token`).
 *
 * @module
 */
import type { GatewayContext } from "../server/context.ts";
import { resolvePeer } from "../server/net.ts";
import { bearerToken, methodNotAllowed } from "./common.ts";
import { handleChatCompletions, handleModels, openAiError } from "./openai_compat.ts";
import { handleToolsInvoke } from "./tools_invoke.ts";
import { HooksHandler } from "./hooks.ts";

/** The outcome of checking a request's gateway secret; `retryAfterMs` when the address is locked out. */
export type HttpAuthResult = { ok: true } | { ok: false; retryAfterMs?: number };

/** What the HTTP endpoints need of the gateway. */
export interface HttpApiHost {
  /** The gateway as handlers see it. */
  ctx: GatewayContext;
  /**
   * Compare `given` with the gateway's token or password in constant time.
   * `from.limited`: count a failure toward `from.ip`'s lockout (false for direct
   * loopback without a browser Origin, as for WebSocket connects).
   */
  checkSecret(
    given: string | undefined,
    from: { ip: string; limited: boolean },
  ): Promise<HttpAuthResult>;
}

/**
 * The router of these endpoints.
 *
 * @example
 * ```ts
 * const api = new HttpApi({ ctx: gateway, checkSecret: (token, from) => check(token, from) });
 * const res = api.handle(req, new URL(req.url), info) ?? new Response("not found", { status: 404 });
 * ```
 */
export class HttpApi {
  readonly #host: HttpApiHost;
  readonly #hooks: HooksHandler;

  /** Create the router. */
  constructor(host: HttpApiHost) {
    this.#host = host;
    this.#hooks = new HooksHandler(host.ctx);
  }

  /** Answer `req` when its path is one of ours and turned on; null otherwise. */
  handle(
    req: Request,
    url: URL,
    info: Deno.ServeHandlerInfo<Deno.NetAddr>,
  ): Promise<Response> | null {
    const cfg = this.#host.ctx.config.config;
    const path = url.pathname;
    const endpoints = cfg.gateway.http.endpoints;
    if (path === "/v1/chat/completions") {
      if (!endpoints.chatCompletions.enabled) return null;
      if (req.method !== "POST") return Promise.resolve(methodNotAllowed("POST"));
      return this.#guarded(req, info, () => handleChatCompletions(req, this.#host.ctx));
    }
    if (path === "/v1/models" || path.startsWith("/v1/models/")) {
      if (!endpoints.chatCompletions.enabled) return null;
      if (req.method !== "GET") return Promise.resolve(methodNotAllowed("GET"));
      return this.#guarded(req, info, () => Promise.resolve(handleModels(url, this.#host.ctx)));
    }
    if (path === "/tools/invoke") {
      if (!endpoints.toolsInvoke.enabled) return null;
      if (req.method !== "POST") return Promise.resolve(methodNotAllowed("POST"));
      return this.#guarded(req, info, () => handleToolsInvoke(req, this.#host.ctx));
    }
    if (this.#hooks.owns(path)) {
      const peer = resolvePeer(info.remoteAddr.hostname, req.headers, cfg.gateway.trustedProxies);
      return this.#caught(() => this.#hooks.handle(req, url, peer));
    }
    return null;
  }

  /** Run `fn` once the request proved the gateway secret. */
  async #guarded(
    req: Request,
    info: Deno.ServeHandlerInfo<Deno.NetAddr>,
    fn: () => Promise<Response>,
  ): Promise<Response> {
    const cfg = this.#host.ctx.config.config.gateway;
    const peer = resolvePeer(info.remoteAddr.hostname, req.headers, cfg.trustedProxies);
    // Direct loopback without a browser Origin is exempt from the lockout, as for sockets.
    const limited = !(peer.directLoopback && !req.headers.has("origin"));
    const auth = await this.#host.checkSecret(bearerToken(req.headers), { ip: peer.ip, limited });
    if (!auth.ok) {
      if (auth.retryAfterMs !== undefined) {
        return openAiError(
          429,
          "Too many failed authentication attempts. Please try again later.",
          {
            type: "rate_limit_error",
            code: "auth_rate_limited",
            headers: { "retry-after": String(Math.max(1, Math.ceil(auth.retryAfterMs / 1000))) },
          },
        );
      }
      return openAiError(
        401,
        "Unauthorized: send the gateway token or password as Authorization: Bearer <secret>",
        { code: "invalid_api_key" },
      );
    }
    return await this.#caught(fn);
  }

  async #caught(fn: () => Promise<Response>): Promise<Response> {
    try {
      return await fn();
    } catch (e) {
      this.#host.ctx.log.error("http endpoint failed", { error: e });
      return openAiError(500, "internal error", { type: "api_error" });
    }
  }
}
