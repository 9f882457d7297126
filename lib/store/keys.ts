/**
 * Every Deno KV key gw writes, in one place. All keys start with
 * `["gw", SCHEMA_VERSION]` so a later layout can migrate side by side.
 *
 * @module
 */

/** The layout version in every key's prefix. */
export const SCHEMA_VERSION = 1;

const P = ["gw", SCHEMA_VERSION] as const;

/** Key builders. */
export const keys = {
  /** `{schemaVersion, createdAt, gwVersion}` written once. */
  meta: (): Deno.KvKey => ["gw", "meta"],
  /** Whether heartbeats run (set-heartbeats); absent means the config decides. */
  heartbeatsEnabled: (): Deno.KvKey => [...P, "heartbeat", "enabled"],
  /** The last heartbeat record of any agent. */
  lastHeartbeat: (): Deno.KvKey => [...P, "heartbeat", "last"],
  /** Queued system events of a session, ordered by id. */
  systemEvents: (sessionKey: string): Deno.KvKey => [...P, "sysevent", sessionKey],
  /** One queued system event. */
  systemEvent: (sessionKey: string, id: string): Deno.KvKey => [...P, "sysevent", sessionKey, id],
} as const;
