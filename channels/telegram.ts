/**
 * The Telegram channel module: what the catalog lists. Light on purpose: the
 * bot (`telegram_bot.ts`, with grammY, the formatter and the inbound router)
 * loads only when Telegram is configured, or first used.
 *
 * @module
 */
import { type ChannelModule, lazyChannel } from "./registry.ts";
import { pairingMethods } from "./pairing_methods.ts";

/** Telegram. */
export const telegram: ChannelModule = {
  id: "telegram",
  label: "Telegram",
  methods: pairingMethods("telegram", "Telegram"),
  create: (host) =>
    lazyChannel({
      id: "telegram",
      label: "Telegram",
      detailLabel: "Telegram Bot",
      // The same rule as TelegramChannel.configured(): enabled, and a token from config or env.
      configured: () => {
        const c = host.config().channels.telegram;
        return c?.enabled !== false &&
          Boolean(c?.botToken || host.env("TELEGRAM_BOT_TOKEN")?.trim());
      },
      load: async () => {
        const { TelegramChannel } = await import("./telegram_bot.ts");
        return new TelegramChannel(host);
      },
    }),
};
