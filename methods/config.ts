/**
 * `config.get`, `config.schema`, `config.set`, `config.patch`, `config.apply`.
 * Every write is compare-and-set on `baseHash` and takes effect at once
 * where it can; settings that need a restart come back in `restartRequired`.
 *
 * @module
 */
import { z } from "zod";
import { defineMethod } from "../lib/server/method.ts";
import { configSchema, mergePatch, redact } from "../lib/config/mod.ts";
import { SECRET_KEYS } from "../lib/config/schema.ts";
import { invalidRequest } from "../lib/protocol/errors.ts";
import type { GatewayContext } from "../lib/server/context.ts";
import type { ConfigSnapshot, ConfigWriteResult } from "../lib/protocol/types.ts";

function snapshot(ctx: GatewayContext): ConfigSnapshot {
  const s = ctx.config.state;
  const parsed = s.parsed ? redact(s.parsed) : null;
  return {
    path: ctx.config.path,
    exists: s.exists,
    raw: parsed ? JSON.stringify(parsed, null, 2) + "\n" : null,
    parsed,
    config: redact(s.config) as unknown as Record<string, unknown>,
    hash: s.hash,
    valid: true,
    issues: [],
  };
}

let schemaCache: { schema: Record<string, unknown>; uiHints: Record<string, unknown> } | undefined;

function schemaOf(): { schema: Record<string, unknown>; uiHints: Record<string, unknown> } {
  if (schemaCache) return schemaCache;
  const schema = z.toJSONSchema(configSchema, { io: "input", unrepresentable: "any" }) as Record<
    string,
    unknown
  >;
  const uiHints: Record<string, unknown> = {};
  // Walk properties, records (additionalProperties) and arrays (items): a
  // secret inside models.providers.<id> is as secret as one at the top.
  const walk = (node: unknown, path: string[]) => {
    if (!node || typeof node !== "object") return;
    const n = node as {
      properties?: Record<string, unknown>;
      additionalProperties?: unknown;
      items?: unknown;
      anyOf?: unknown[];
    };
    for (const [k, v] of Object.entries(n.properties ?? {})) {
      const p = [...path, k];
      if (SECRET_KEYS.has(k)) uiHints[p.join(".")] = { sensitive: true };
      walk(v, p);
    }
    if (n.additionalProperties) walk(n.additionalProperties, [...path, "*"]);
    if (n.items) walk(n.items, [...path, "*"]);
    for (const alt of n.anyOf ?? []) walk(alt, path);
  };
  walk(schema, []);
  schemaCache = { schema, uiHints };
  return schemaCache;
}

function parseRaw(raw: string, field: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch (e) {
    throw invalidRequest(`params.${field}: not valid JSON (${(e as Error).message})`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw invalidRequest(`params.${field}: expected a JSON object`);
  }
  return v as Record<string, unknown>;
}

async function write(
  ctx: GatewayContext,
  next: (current: Record<string, unknown>) => unknown,
  baseHash: string | undefined,
  method: string,
): Promise<ConfigWriteResult> {
  const s = await ctx.config.write(next, baseHash);
  const restartRequired = await ctx.applyConfig();
  ctx.log.info("config written", { method, hash: s.hash.slice(0, 12), restartRequired });
  return {
    ok: true,
    path: ctx.config.path,
    hash: s.hash,
    config: redact(s.config) as unknown as Record<string, unknown>,
    restartRequired,
  };
}

const baseHash = z.string().regex(/^[0-9a-f]{64}$/, "expected the hash from config.get").optional();
const note = z.string().max(1000).optional();

const replaceParams = z.strictObject({
  raw: z.string().max(1_000_000).optional(),
  config: z.record(z.string(), z.unknown()).optional(),
  baseHash,
  note,
  sessionKey: z.string().max(512).optional(),
  restartDelayMs: z.int().min(0).optional(),
}).refine((p) => (p.raw === undefined) !== (p.config === undefined), {
  message: "send exactly one of raw (JSON text) or config (an object)",
  path: ["raw"],
});

/** `config.get`: the config, secrets redacted, with the hash writes must send back. */
export const configGet = defineMethod({
  name: "config.get",
  scope: "read",
  summary: "The config file and effective config (secrets redacted) with its hash.",
  params: z.looseObject({}),
  handler: (_p, ctx): ConfigSnapshot => snapshot(ctx),
});

/** `config.schema`: JSON Schema of the config file. */
export const configSchemaMethod = defineMethod({
  name: "config.schema",
  scope: "read",
  summary: "JSON Schema of gw.json, with UI hints.",
  params: z.looseObject({}),
  handler: (_p, ctx) => ({
    ...schemaOf(),
    version: ctx.version,
    generatedAt: new Date().toISOString(),
  }),
});

/** `config.set`: replace the whole config. */
export const configSet = defineMethod({
  name: "config.set",
  scope: "admin",
  summary: "Replace the config (raw JSON or object), compare-and-set on baseHash.",
  params: replaceParams,
  handler: (p, ctx): Promise<ConfigWriteResult> =>
    write(ctx, () => p.config ?? parseRaw(p.raw!, "raw"), p.baseHash, "config.set"),
});

/** `config.patch`: merge a JSON merge patch (RFC 7386) into the config. */
export const configPatch = defineMethod({
  name: "config.patch",
  scope: "admin",
  summary: "Merge a JSON merge patch into the config, compare-and-set on baseHash.",
  params: z.strictObject({
    raw: z.string().max(1_000_000).optional(),
    patch: z.record(z.string(), z.unknown()).optional(),
    baseHash,
    note,
    sessionKey: z.string().max(512).optional(),
    restartDelayMs: z.int().min(0).optional(),
  }).refine((p) => (p.raw === undefined) !== (p.patch === undefined), {
    message: "send exactly one of raw (JSON text) or patch (an object)",
    path: ["raw"],
  }),
  handler: (p, ctx): Promise<ConfigWriteResult> => {
    const patch = p.patch ?? parseRaw(p.raw!, "raw");
    return write(ctx, (current) => mergePatch(current, patch), p.baseHash, "config.patch");
  },
});

/** `config.apply`: replace the config and apply it now; what needs a restart is listed. */
export const configApply = defineMethod({
  name: "config.apply",
  scope: "admin",
  summary: "Replace the config and apply it; lists settings that need a restart.",
  params: replaceParams,
  handler: (p, ctx): Promise<ConfigWriteResult> =>
    write(ctx, () => p.config ?? parseRaw(p.raw!, "raw"), p.baseHash, "config.apply"),
});
