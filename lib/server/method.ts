/**
 * A method is data: name, scope, params schema, handler. The table in
 * `methods/mod.ts` is the single source for hello-ok, the scope check, the
 * CLI's help and the tests' scope matrix.
 *
 * @module
 */
import type { z } from "zod";
import type { GatewayContext } from "./context.ts";
import type { Role } from "../protocol/types.ts";

/**
 * What a method needs from the caller.
 * `none`: any authenticated connection; `node`: node role only; the rest are
 * operator scopes (`operator.<scope>`), where admin satisfies all and write
 * satisfies read and talk.
 */
export type MethodScope =
  | "none"
  | "node"
  | "read"
  | "write"
  | "admin"
  | "approvals"
  | "pairing"
  | "talk";

/** Who is calling, as a handler sees it. */
export interface CallerInfo {
  connId: string;
  role: Role;
  scopes: ReadonlySet<string>;
  clientId: string;
  clientMode: string;
  protocol: number;
  ip: string;
  directLoopback: boolean;
  /** The verified, paired device (for nodes: the node id). */
  deviceId?: string | undefined;
}

/** A JSON value already serialised, returned by handlers on hot paths to skip re-encoding. */
export class RawJson {
  /** The JSON text. */
  readonly json: string;
  /** Wrap JSON text. */
  constructor(json: string) {
    this.json = json;
  }
}

/** The request being answered, for methods that answer twice (`agent`). */
export interface RequestHandle {
  /** The request id. */
  id: string;
  /** Send an ok response now; the handler's result is sent as a second response with the same id. */
  interim(payload: unknown): void;
}

/** One method's definition. */
export interface MethodDef<P = unknown, R = unknown> {
  /** Wire name, e.g. `config.get`. */
  name: string;
  /** Scope the caller needs. */
  scope: MethodScope;
  /** One line for `gw help`. */
  summary: string;
  /** Params schema; its errors name the field. */
  params: z.ZodType<P>;
  /** Answers twice (an interim reply, then the result): only then does the handler get a live {@link RequestHandle}. */
  twoPhase?: boolean;
  /**
   * Whether the method can work now (e.g. its channel is configured). When
   * false it is left out of hello-ok and answers UNAVAILABLE. Absent: always.
   */
  available?: (ctx: GatewayContext) => boolean;
  /** Why it is unavailable, for the UNAVAILABLE answer. */
  unavailableReason?: string;
  /** The work. Returns the result or throws a GatewayError. */
  handler: (
    params: P,
    ctx: GatewayContext,
    caller: CallerInfo,
    req: RequestHandle,
  ) => R | Promise<R>;
}

/**
 * Define a method with its params type inferred from the schema.
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * export const ping = defineMethod({
 *   name: "ping",
 *   scope: "read",
 *   summary: "Answer pong.",
 *   params: z.strictObject({}),
 *   handler: () => ({ pong: true }),
 * });
 * ```
 */
export function defineMethod<S extends z.ZodType, R>(def: {
  name: string;
  scope: MethodScope;
  summary: string;
  params: S;
  twoPhase?: boolean;
  available?: (ctx: GatewayContext) => boolean;
  unavailableReason?: string;
  handler: (
    params: z.output<S>,
    ctx: GatewayContext,
    caller: CallerInfo,
    req: RequestHandle,
  ) => R | Promise<R>;
}): MethodDef<z.output<S>, R> {
  return def as MethodDef<z.output<S>, R>;
}

/** The full scope string a method scope needs, or null for none/node. */
export function requiredScope(scope: MethodScope): string | null {
  return scope === "none" || scope === "node" ? null : `operator.${scope}`;
}

/** Whether `granted` satisfies operator scope `needed`. */
export function hasScope(granted: ReadonlySet<string>, needed: string): boolean {
  if (granted.has("operator.admin") || granted.has(needed)) return true;
  if (needed === "operator.read" || needed === "operator.talk") {
    return granted.has("operator.write");
  }
  return false;
}
