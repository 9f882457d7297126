/**
 * The Telegram channel module: what the catalog lists. Light on purpose: the
 * bot itself (`telegram_bot.ts`, grammY) is made here but loads grammY only
 * when it starts.
 *
 * @module
 */
import type { ChannelModule } from "./registry.ts";
import { pairingMethods } from "./pairing_methods.ts";
import { TelegramChannel } from "./telegram_bot.ts";

/** Telegram. */
export const telegram: ChannelModule = {
  id: "telegram",
  label: "Telegram",
  methods: pairingMethods("telegram", "Telegram"),
  create: (host) => new TelegramChannel(host),
};
