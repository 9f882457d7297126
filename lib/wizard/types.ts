/**
 * The setup wizard's wire shapes, as OpenClaw's gateway protocol defines
 * them (`WizardStepSchema`, `WizardNextResultSchema`, ...): what
 * `wizard.start`, `wizard.next`, `wizard.cancel` and `wizard.status` return.
 * Types only, so a client (`gw setup`) can use them without the machine.
 *
 * @module
 */

/** Where a wizard session stands. */
export type WizardRunStatus = "running" | "done" | "cancelled" | "error";

/** One choice of a `select` step. */
export interface WizardStepOption {
  value: unknown;
  label: string;
  hint?: string;
}

/** One step as a client renders it. Secrets never appear in it (no `initialValue` when `sensitive`). */
export interface WizardStep {
  /** Send it back as `answer.stepId`. */
  id: string;
  type: "note" | "select" | "text" | "confirm" | "multiselect" | "progress" | "action";
  title?: string;
  message?: string;
  options?: WizardStepOption[];
  initialValue?: unknown;
  placeholder?: string;
  /** The answer is a secret: read it without echo. */
  sensitive?: boolean;
  /** Who acts on the step; every gw step waits for the client's answer. */
  executor?: "gateway" | "client";
}

/** A channel account the wizard configured. */
export interface WizardConfiguredAccount {
  channel: string;
  accountId: string;
}

/** The result of `wizard.next` (and, with `sessionId`, of `wizard.start`). */
export interface WizardNextResult {
  done: boolean;
  step?: WizardStep;
  status?: WizardRunStatus;
  /** Why the step is shown again (a rejected key), or why the wizard ended. */
  error?: string;
  /** Channels configured (when the wizard saved one). */
  channels?: string[];
  accounts?: WizardConfiguredAccount[];
  /** The default model the wizard saved, when it saved one. */
  modelActivation?: { modelRef: string; gatewayRestartRequired?: true };
}

/** The result of `wizard.start`. */
export interface WizardStartResult extends WizardNextResult {
  sessionId: string;
}

/** The result of `wizard.status` and `wizard.cancel`. */
export interface WizardStatusResult {
  status: WizardRunStatus;
  error?: string;
}

/** An answer to the current step. */
export interface WizardAnswer {
  stepId: string;
  value?: unknown;
}

/** The params of `wizard.start` (OpenClaw's names). */
export interface WizardStartParams {
  /** Only `local`: gw's wizard sets up the gateway it runs in. */
  mode?: "local";
  /** Accepted for OpenClaw clients and ignored: gw has no agent workspace. */
  workspace?: string;
  /** Accepted for OpenClaw clients and ignored: gw installs no service from the wizard. */
  installDaemon?: boolean;
  /** `setup` (everything, the default) or `channels` (only the chat channel steps). */
  flow?: "setup" | "channels";
  /** With flow `channels`: which channel (gw has `telegram`). */
  channel?: string;
}
