/**
 * Exec policies (one per execution host) in Deno KV, written by
 * compare-and-set on a content hash, as OpenClaw's exec-approvals file.
 *
 * @module
 */
import { keys } from "./keys.ts";
import { busyRetry } from "./busy.ts";

/** What may run without asking. */
export type Security = "deny" | "allowlist" | "full";
/** When to ask a person. */
export type Ask = "off" | "on-miss" | "always";

/** One allowlist entry: a glob over the resolved binary path, and optionally over the args. */
export interface AllowEntry {
  id: string;
  pattern: string;
  argPattern?: string;
  addedAtMs: number;
  /** Grants can expire (allow-always with a TTL). */
  expiresAtMs?: number;
  addedBy?: string;
  lastUsedAtMs?: number;
}

/** Settings of the defaults or of one agent. */
export interface PolicySettings {
  security?: Security;
  ask?: Ask;
  /** What happens when nobody answers in time. */
  askFallback?: Security;
}

/** A host's policy file. */
export interface PolicyFile {
  version: 1;
  defaults: PolicySettings;
  agents: Record<string, PolicySettings & { allowlist?: AllowEntry[] }>;
}

/** Nothing runs until a person says so. */
export const DEFAULT_POLICY: PolicyFile = {
  version: 1,
  defaults: { security: "allowlist", ask: "on-miss", askFallback: "deny" },
  agents: {},
};

/** A snapshot as exec.approvals.get answers it. */
export interface PolicySnapshot {
  path: string;
  exists: boolean;
  hash: string;
  file: PolicyFile;
}

async function hashOf(file: PolicyFile): Promise<string> {
  const d = new Uint8Array(
    await crypto.subtle.digest("SHA-256", new TextEncoder().encode(JSON.stringify(file))),
  );
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Exec policies over one KV handle. */
export class ExecPolicyStore {
  readonly #kv: Deno.Kv;

  /** Wrap a KV handle. */
  constructor(kv: Deno.Kv) {
    this.#kv = kv;
  }

  /** The policy of `host` (the default when none was written). */
  async get(host: string): Promise<PolicySnapshot> {
    const e = await this.#kv.get<PolicyFile>(keys.execPolicy(host));
    const file = e.value ?? structuredClone(DEFAULT_POLICY);
    return {
      path: `kv:exec/policy/${host}`,
      exists: e.value !== null,
      hash: await hashOf(file),
      file,
    };
  }

  /**
   * Write `file` if the stored policy still hashes to `baseHash`. Resolves
   * with the new snapshot, or null on a conflict.
   */
  async set(host: string, file: PolicyFile, baseHash: string): Promise<PolicySnapshot | null> {
    const cur = await this.#kv.get<PolicyFile>(keys.execPolicy(host));
    const curFile = cur.value ?? DEFAULT_POLICY;
    if ((await hashOf(curFile)) !== baseHash) return null;
    const r = await busyRetry(() =>
      this.#kv.atomic().check(cur).set(keys.execPolicy(host), file).commit()
    );
    if (!r.ok) return null;
    return { path: `kv:exec/policy/${host}`, exists: true, hash: await hashOf(file), file };
  }

  /** Change the policy with `fn` (compare-and-set, retried): for grants and last-used times. */
  async update(host: string, fn: (f: PolicyFile) => void): Promise<PolicySnapshot> {
    for (;;) {
      const cur = await this.#kv.get<PolicyFile>(keys.execPolicy(host));
      const file = structuredClone(cur.value ?? DEFAULT_POLICY);
      fn(file);
      const r = await busyRetry(() =>
        this.#kv.atomic().check(cur).set(keys.execPolicy(host), file).commit()
      );
      if (r.ok) {
        return { path: `kv:exec/policy/${host}`, exists: true, hash: await hashOf(file), file };
      }
    }
  }
}
