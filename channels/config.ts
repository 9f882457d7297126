/**
 * The config of each channel (`channels.<id>` in gw.json), with OpenClaw's
 * field names. Only zod here: the config loads without any channel's code.
 *
 * @module
 */
import { z } from "zod";

/** Sender ids as strings (Telegram user ids are numbers in OpenClaw's config too). */
const senderIds = z.array(
  z.union([z.string().trim().min(1).max(128), z.int()]).transform(String),
).max(10_000);

/** Who may talk to the bot in direct messages. */
export const DM_POLICIES = ["pairing", "allowlist", "open", "disabled"] as const;
/** Who may talk to the bot in groups. */
export const GROUP_POLICIES = ["allowlist", "open", "disabled"] as const;

/** `channels.telegram`. */
export const telegramConfig = z.strictObject({
  enabled: z.boolean().default(true).describe("Run the Telegram bot (when it has a token)."),
  botToken: z.string().trim().regex(/^[^\s/]{8,256}$/, "expected a bot token from @BotFather")
    .optional().describe("The bot token from @BotFather. TELEGRAM_BOT_TOKEN is used when absent."),
  apiRoot: z.url({ protocol: /^https?$/ }).optional().describe(
    "Bot API server root, for a self-hosted Bot API server. TELEGRAM_API_ROOT when absent; else https://api.telegram.org.",
  ),
  dmPolicy: z.enum(DM_POLICIES).default("pairing").describe(
    "Direct messages: pairing (an unknown sender gets a code an operator approves), allowlist (allowFrom only), open (anyone) or disabled.",
  ),
  allowFrom: senderIds.default([]).describe(
    'Telegram user ids allowed to talk to the agent (besides approved pairings); "*" allows anyone.',
  ),
  groupPolicy: z.enum(GROUP_POLICIES).default("allowlist").describe(
    "Groups: allowlist (senders in groupAllowFrom, else allowFrom, or approved), open (anyone in the group) or disabled.",
  ),
  groupAllowFrom: senderIds.optional().describe("Telegram user ids allowed in groups."),
  requireMention: z.boolean().default(true).describe(
    "In groups, answer only when the bot is mentioned or replied to.",
  ),
  streaming: z.enum(["partial", "off"]).default("partial").describe(
    "partial: the reply grows in place as it streams (edits); off: one message when done.",
  ),
  agentId: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/i).optional().describe(
    "Agent that answers; the default agent when absent.",
  ),
  webhookUrl: z.url({ protocol: /^https?$/ }).optional().describe(
    "Public base URL (https) that reaches this gateway; set, gw registers <webhookUrl>/telegram/<path> with Telegram instead of long polling.",
  ),
  webhookSecret: z.string().regex(/^[A-Za-z0-9_-]{16,256}$/, "expected 16-256 of A-Z a-z 0-9 _ -")
    .optional().describe(
      "Secret Telegram sends in X-Telegram-Bot-Api-Secret-Token (webhook mode).",
    ),
  mediaMaxMb: z.number().min(1).max(20).default(20).describe(
    "Largest photo or document taken from a message, in MB (bots can download at most 20).",
  ),
}).refine((t) => !t.webhookUrl || t.webhookSecret, {
  message: "webhook mode needs channels.telegram.webhookSecret",
  path: ["webhookSecret"],
});

/** `channels`: one entry per channel gw has. */
export const channelsConfig = z.strictObject({
  telegram: telegramConfig.optional(),
}).prefault({});

/** The effective Telegram config. */
export type TelegramConfig = z.output<typeof telegramConfig>;
