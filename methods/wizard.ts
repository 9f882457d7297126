/**
 * The onboarding wizard: `wizard.start`, `wizard.next`, `wizard.cancel`,
 * `wizard.status` (admin), with OpenClaw's params and result shapes. The
 * steps (gateway access, model with a checked key, Telegram with a checked
 * token, review) are in lib/wizard/machine.ts; sessions are kept in KV, so a
 * client that reconnects continues where it was. `gw setup` is its CLI.
 *
 * @module
 */
import { z } from "zod";
import { defineMethod } from "../lib/server/method.ts";
import { invalidRequest } from "../lib/protocol/errors.ts";
import type { GatewayContext } from "../lib/server/context.ts";
import type { WizardHost } from "../lib/wizard/machine.ts";
import { WizardSessions } from "../lib/wizard/sessions.ts";
import type {
  WizardNextResult,
  WizardStartResult,
  WizardStatusResult,
} from "../lib/wizard/types.ts";

const sessions = new WeakMap<object, WizardSessions>();

function envGet(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // no env permission for this name
  }
}

/** The wizard sessions of the gateway `ctx` belongs to. */
function wizardsOf(ctx: GatewayContext): WizardSessions {
  let w = sessions.get(ctx.store);
  if (!w) {
    const host: WizardHost = {
      stateDir: ctx.stateDir,
      config: ctx.config,
      live: true,
      env: envGet,
      applyConfig: () => ctx.applyConfig(),
      now: () => ctx.clock.now(),
      log: ctx.log,
    };
    w = new WizardSessions(ctx.store.wizard, host);
    sessions.set(ctx.store, w);
  }
  return w;
}

const sessionId = z.string().min(1).max(256);

/** `wizard.start`: start the setup wizard and show its first step. */
export const wizardStart = defineMethod({
  name: "wizard.start",
  scope: "admin",
  summary: "Start the setup wizard (one at a time); returns sessionId and the first step.",
  params: z.strictObject({
    mode: z.enum(["local", "remote"]).optional(),
    workspace: z.string().max(4096).optional(),
    installDaemon: z.boolean().optional(),
    flow: z.enum(["setup", "channels"]).optional(),
    channel: z.string().min(1).max(64).optional(),
  }),
  handler: (p, ctx): Promise<WizardStartResult> => {
    if (p.mode === "remote") {
      throw invalidRequest(
        "params.mode: gw's wizard sets up the gateway it runs in (local); run it on the remote gateway",
      );
    }
    if (p.channel !== undefined && p.channel.trim().toLowerCase() !== "telegram") {
      throw invalidRequest("params.channel: the wizard sets up telegram only");
    }
    return wizardsOf(ctx).start({ flow: p.flow });
  },
});

/** `wizard.next`: answer the current step (or show it again) and get the next one. */
export const wizardNext = defineMethod({
  name: "wizard.next",
  scope: "admin",
  summary: "Answer the wizard's current step ({stepId, value}); without an answer, show it again.",
  params: z.strictObject({
    sessionId,
    answer: z.strictObject({
      stepId: z.string().min(1).max(256),
      value: z.unknown().optional(),
    }).optional(),
  }),
  handler: (p, ctx): Promise<WizardNextResult> =>
    wizardsOf(ctx).next(
      p.sessionId,
      p.answer && { stepId: p.answer.stepId, value: p.answer.value },
    ),
});

/** `wizard.cancel`: end the wizard without saving anything. */
export const wizardCancel = defineMethod({
  name: "wizard.cancel",
  scope: "admin",
  summary: "Cancel the wizard; nothing is saved.",
  params: z.strictObject({ sessionId, closeInput: z.boolean().optional() }),
  handler: (p, ctx): Promise<WizardStatusResult> =>
    wizardsOf(ctx).cancel(p.sessionId, p.closeInput === true),
});

/** `wizard.status`: running, done, cancelled or error (an ended wizard is forgotten once read). */
export const wizardStatus = defineMethod({
  name: "wizard.status",
  scope: "admin",
  summary: "The wizard's status: running, done, cancelled or error.",
  params: z.strictObject({ sessionId }),
  handler: (p, ctx): Promise<WizardStatusResult> => wizardsOf(ctx).status(p.sessionId),
});
