/**
 * The OpenClaw Gateway wire protocol without the client: frame shapes, the
 * `connect` handshake, the `hello-ok` payload, error codes, close codes,
 * operator scopes, the params and results of every method gw implements
 * ({@link MethodMap}), the `chat` and `agent` events, and the string a device
 * signs on connect ({@link devicePayload}). Types and constants only, no
 * dependencies and no side effects: use it to write your own client or
 * server, or to type frames you read off a socket.
 *
 * Everything here is also exported by the package's main entry point, except
 * {@link devicePayload} and {@link SignedFields} (the client signs with
 * `DeviceIdentity` instead).
 *
 * Not here: the scope each OpenClaw method needs. gw keeps that table beside
 * its server (it is typed by the server's method definitions); `gw help` and
 * `docs/methods.md` list it.
 *
 * @example
 * ```ts
 * import { type Frame, PROTOCOL_VERSION, type RequestFrame } from "@gw/gw/protocol";
 *
 * const req: RequestFrame = { type: "req", id: "1", method: "health" };
 * const frame: Frame = JSON.parse(JSON.stringify(req));
 * if (frame.type === "req") console.log(frame.method, PROTOCOL_VERSION); // health 4
 * ```
 *
 * @module
 */

export * from "./lib/protocol/types.ts";
export { devicePayload } from "./lib/protocol/device_auth.ts";
export type { SignedFields } from "./lib/protocol/device_auth.ts";
