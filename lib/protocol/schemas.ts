/**
 * zod schemas for what the server reads off the wire before a method runs:
 * the connect params. Strict on types and sizes, lenient on unknown client
 * ids and extra fields (newer OpenClaw clients add fields often).
 *
 * @module
 */
import { z } from "zod";
import type { ConnectParams } from "./types.ts";

const shortText = (max: number) => z.string().max(max);

const clientInfo = z.looseObject({
  id: z.string().min(1).max(64),
  version: shortText(128),
  platform: shortText(128),
  mode: z.string().min(1).max(32),
  displayName: shortText(256).optional(),
  deviceFamily: shortText(64).optional(),
  modelIdentifier: shortText(128).optional(),
  instanceId: shortText(128).optional(),
  buildId: shortText(96).optional(),
  timeZone: shortText(64).optional(),
});

const secret = z.string().max(4096);

/** Schema of the `connect` params. */
export const connectParamsSchema: z.ZodType<ConnectParams> = z.looseObject({
  minProtocol: z.int().min(1).max(1000),
  maxProtocol: z.int().min(1).max(1000),
  client: clientInfo,
  role: z.enum(["operator", "node"]).optional(),
  scopes: z.array(z.string().min(1).max(128)).max(64).optional(),
  caps: z.array(z.string().max(128)).max(256).optional(),
  commands: z.array(z.string().max(256)).max(1024).optional(),
  permissions: z.record(z.string().max(128), z.boolean()).optional(),
  pathEnv: z.string().max(16384).optional(),
  locale: shortText(64).optional(),
  userAgent: shortText(512).optional(),
  auth: z.looseObject({
    token: secret.optional(),
    password: secret.optional(),
    deviceToken: secret.optional(),
    bootstrapToken: secret.optional(),
  }).optional(),
  device: z.object({
    id: z.string().min(1).max(128),
    publicKey: z.string().min(1).max(1024),
    signature: z.string().min(1).max(1024),
    signedAt: z.int(),
    nonce: z.string().max(128),
  }).optional(),
}) as unknown as z.ZodType<ConnectParams>;
