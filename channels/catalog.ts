/**
 * Every channel gw has. A new channel is a module in `channels/` (see
 * `registry.ts` for the interface), its config in `config.ts`, and one line
 * here.
 *
 * @module
 */
import type { ChannelModule } from "./registry.ts";
import { telegram } from "./telegram.ts";

/** The channel modules, in the order `channels.status` lists them. */
export const CHANNEL_MODULES: readonly ChannelModule[] = [telegram];
