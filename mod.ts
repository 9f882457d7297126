/**
 * gw's client library: {@link GatewayClient}, a dependency-free client for the
 * OpenClaw Gateway WebSocket protocol, and the protocol's types and constants.
 * It runs in Deno, browsers, Node 22+ and Bun (anything with a global
 * `WebSocket`). {@link DeviceIdentity} and {@link deviceAuthHook} add an Ed25519
 * device identity (pairing, device tokens kept in an {@link IdentityStorage}).
 * The protocol's types alone, without the client, are `@gw/gw/protocol`.
 *
 * Install: `deno add jsr:@gw/gw` (Deno), `npx jsr add @gw/gw` (Node),
 * `bunx jsr add @gw/gw` (Bun). `examples/chat.ts` in the repository is a
 * complete client: health, a chat message, the streamed reply.
 *
 * @example
 * ```ts ignore
 * import { GatewayClient, GatewayRequestError } from "@gw/gw";
 *
 * const client = new GatewayClient({ url: "ws://127.0.0.1:18789", token: "secret", reconnect: true });
 * client.on("tick", (payload) => console.log("tick", payload));
 * const hello = await client.connect();
 * console.log("protocol", hello.protocol);
 * try {
 *   const health = await client.request("health");
 *   console.log(health.ok);
 * } catch (e) {
 *   if (e instanceof GatewayRequestError) console.error(e.code, e.message);
 * }
 * await client.close();
 * ```
 *
 * @module
 */

export {
  GatewayClient,
  GatewayConnectError,
  GatewayRequestError,
  GatewayTimeoutError,
} from "./lib/client/client.ts";
export type {
  ClientState,
  EventHandler,
  GatewayClientOptions,
  ReconnectOptions,
  RequestOptions,
  SeqGap,
  StateHandler,
} from "./lib/client/client.ts";
export {
  deviceAuthHook,
  deviceAuthPayload,
  DeviceIdentity,
  gatewayKey,
  IdentityError,
  IndexedDbIdentityStorage,
  loadOrCreateIdentity,
  MemoryIdentityStorage,
  signedToken,
} from "./lib/client/identity.ts";
export type {
  DeviceTokenStorage,
  IdentityStorage,
  SignDeviceHook,
  SignParams,
  StoredDeviceToken,
  StoredIdentity,
} from "./lib/client/identity.ts";
export * from "./lib/protocol/types.ts";
