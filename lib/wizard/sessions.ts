/**
 * Wizard sessions: start, answer, cancel and look up, one running at a time,
 * stored between requests (see store.ts) so a client that lost its
 * connection picks up where it was (`wizard.status`, then `wizard.next`
 * without an answer shows the current step again).
 *
 * OpenClaw's rules: a second `wizard.start` while one runs answers
 * `UNAVAILABLE` (retryable, `details.code: "SETUP_ADMISSION_BUSY"`; gw adds
 * `details.sessionId` so an admin can continue or cancel it); an unknown
 * session is `INVALID_REQUEST` "wizard not found"
 * (`details.code: "WIZARD_NOT_FOUND"`); an answer when the session has ended
 * is "wizard not running"; an answer that does not fit its step comes back
 * as the same step with `error`. A running session expires after an hour
 * without an answer; an ended one is kept five minutes for `wizard.status`,
 * which then forgets it.
 *
 * @module
 */
import { GatewayError, invalidRequest } from "../protocol/errors.ts";
import { ErrorCode } from "../protocol/types.ts";
import type { WizardHost, WizardState } from "./machine.ts";

/**
 * The step machine (with the provider checks it runs) loads on the first
 * wizard call: a gateway that is never set up through the wizard never pays
 * for it. Every use is inside {@link WizardSessions}' serialised work, which
 * loads it first.
 */
let M: typeof import("./machine.ts");
async function loadMachine(): Promise<void> {
  M ??= await import("./machine.ts");
}
import type { StoredWizard, WizardStore } from "./store.ts";
import type {
  WizardAnswer,
  WizardNextResult,
  WizardStartResult,
  WizardStatusResult,
} from "./types.ts";

/** A running session is dropped after this long without an answer. */
export const WIZARD_TTL_MS = 60 * 60_000;
/** An ended session is kept this long for `wizard.status`. */
export const WIZARD_ENDED_TTL_MS = 5 * 60_000;

/** Options of {@link WizardSessions}. */
export interface WizardSessionsOptions {
  /** Idle time after which a running session expires. @default {3600000} */
  ttlMs?: number;
  /** How long an ended session stays readable. @default {300000} */
  endedTtlMs?: number;
}

function notFound(): GatewayError {
  return invalidRequest("wizard not found", { code: "WIZARD_NOT_FOUND" });
}

function busy(sessionId: string | null): GatewayError {
  return new GatewayError(
    ErrorCode.UNAVAILABLE,
    "setup is already in progress; try again when it finishes",
    {
      retryable: true,
      details: { code: "SETUP_ADMISSION_BUSY", ...(sessionId ? { sessionId } : {}) },
    },
  );
}

/**
 * The wizard sessions of one gateway (or of `gw setup` alone).
 *
 * @example
 * ```ts
 * const wizards = new WizardSessions(new MemoryWizardStore(), host);
 * const r = await wizards.start({});
 * const next = await wizards.next(r.sessionId, { stepId: r.step!.id, value: "keep" });
 * ```
 */
export class WizardSessions {
  readonly #store: WizardStore;
  readonly #host: WizardHost;
  readonly #ttl: number;
  readonly #endedTtl: number;
  readonly #locks = new Map<string, Promise<unknown>>();
  readonly #checks = new Map<string, AbortController>();

  /** Sessions kept in `store`, run against `host`. */
  constructor(store: WizardStore, host: WizardHost, opts: WizardSessionsOptions = {}) {
    this.#store = store;
    this.#host = host;
    this.#ttl = opts.ttlMs ?? WIZARD_TTL_MS;
    this.#endedTtl = opts.endedTtlMs ?? WIZARD_ENDED_TTL_MS;
  }

  /**
   * Start a session and show its first step.
   * @throws {GatewayError} `UNAVAILABLE` (`SETUP_ADMISSION_BUSY`) when one is running.
   */
  start(params: { flow?: "setup" | "channels" | undefined }): Promise<WizardStartResult> {
    return this.#serial("start", async () => {
      let expected = await this.#store.running();
      if (expected) {
        const s = await this.#load(expected);
        if (s?.state.status === "running") throw busy(expected);
        expected = await this.#store.running();
      }
      const state = M.firstState(crypto.randomUUID(), params.flow ?? "setup", this.#host.now());
      if (!await this.#store.create(state, expected, this.#ttl)) {
        throw busy(await this.#store.running());
      }
      this.#host.log?.info("wizard started", { wizard: state.id.slice(0, 8), flow: state.flow });
      return { sessionId: state.id, ...await this.#current(state) };
    });
  }

  /**
   * Answer the current step (or, without an answer, show it again) and
   * return the next one, or the end.
   * @throws {GatewayError} `INVALID_REQUEST` for an unknown session, an
   * answer to another step, or an answer after the end.
   */
  next(sessionId: string, answer?: WizardAnswer): Promise<WizardNextResult> {
    return this.#serial(sessionId, async () => {
      const s = await this.#load(sessionId);
      if (!s) throw notFound();
      const state = s.state;
      if (state.status !== "running") {
        if (answer) throw invalidRequest("wizard not running");
        return M.terminalResult(state);
      }
      if (!answer) return await this.#current(state);
      const current = M.stepIdOf(state);
      if (answer.stepId !== current) {
        throw invalidRequest(
          `wizard: no pending step ${JSON.stringify(answer.stepId)}; the current step is ${
            JSON.stringify(current)
          }`,
          { code: "WIZARD_STEP_MISMATCH", stepId: current },
        );
      }
      const ac = new AbortController();
      this.#checks.set(sessionId, ac);
      let invalid: string | undefined;
      try {
        invalid = (await M.advance(state, answer.value, this.#host, ac.signal)).invalid;
      } catch (e) {
        // Cancelled during a check: the cancel queued behind this request records it.
        if (e instanceof M.WizardCancelledError) {
          return { done: true, status: "cancelled", error: e.message };
        }
        this.#host.log?.warn("wizard failed", { wizard: sessionId.slice(0, 8), error: e });
        M.finish(state, "error", (e as Error).message);
      } finally {
        this.#checks.delete(sessionId);
      }
      if (invalid !== undefined) return { ...await this.#current(state), error: invalid };
      const saved = await this.#save(state, s);
      if (!saved) return await this.#resultOf(sessionId);
      if (state.status !== "running") {
        this.#host.log?.info("wizard ended", {
          wizard: sessionId.slice(0, 8),
          status: state.status,
        });
        return M.terminalResult(state);
      }
      return await this.#current(state);
    });
  }

  /**
   * End a running session without writing anything (a check in progress is
   * aborted). Returns the session's status; an ended session stays as it was.
   */
  cancel(sessionId: string, closeInput = false): Promise<WizardStatusResult> {
    this.#checks.get(sessionId)?.abort();
    return this.#serial(sessionId, async () => {
      const s = await this.#load(sessionId);
      if (!s) throw notFound();
      const state = s.state;
      if (state.status === "running") {
        M.finish(state, "cancelled", closeInput ? "The setup window was closed." : "cancelled");
        if (!await this.#save(state, s)) return await this.#statusOf(sessionId);
        this.#host.log?.info("wizard cancelled; nothing saved", { wizard: sessionId.slice(0, 8) });
      }
      return statusOf(state);
    });
  }

  /** The status of a session; an ended one is forgotten once read. */
  status(sessionId: string): Promise<WizardStatusResult> {
    return this.#serial(sessionId, async () => {
      const s = await this.#load(sessionId);
      if (!s) throw notFound();
      if (s.state.status !== "running") await this.#store.delete(sessionId);
      return statusOf(s.state);
    });
  }

  async #current(state: WizardState): Promise<WizardNextResult> {
    const r: WizardNextResult = {
      done: false,
      step: await M.renderStep(state, this.#host),
      status: "running",
    };
    if (state.stepError !== undefined) r.error = state.stepError;
    return r;
  }

  async #resultOf(sessionId: string): Promise<WizardNextResult> {
    const s = await this.#load(sessionId);
    if (!s) throw notFound();
    return s.state.status === "running" ? await this.#current(s.state) : M.terminalResult(s.state);
  }

  async #statusOf(sessionId: string): Promise<WizardStatusResult> {
    const s = await this.#load(sessionId);
    if (!s) throw notFound();
    return statusOf(s.state);
  }

  #save(state: WizardState, from: StoredWizard): Promise<boolean> {
    state.updatedAt = this.#host.now();
    const ttl = state.status === "running" ? this.#ttl : this.#endedTtl;
    return this.#store.save(state, from.version, ttl);
  }

  /** The session, or null when unknown or expired (an expired one is removed). */
  async #load(id: string): Promise<StoredWizard | null> {
    const s = await this.#store.get(id);
    if (!s) return null;
    const ttl = s.state.status === "running" ? this.#ttl : this.#endedTtl;
    if (this.#host.now() - s.state.updatedAt >= ttl) {
      await this.#store.delete(id);
      if (s.state.status === "running") {
        this.#host.log?.info("wizard expired; nothing saved", { wizard: id.slice(0, 8) });
      }
      return null;
    }
    return s;
  }

  #serial<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#locks.get(key) ?? Promise.resolve();
    const work = () => loadMachine().then(fn);
    const run = prev.then(work, work);
    const tail = run.then(() => {}, () => {});
    this.#locks.set(key, tail);
    void tail.then(() => {
      if (this.#locks.get(key) === tail) this.#locks.delete(key);
    });
    return run;
  }
}

function statusOf(state: WizardState): WizardStatusResult {
  return state.error === undefined
    ? { status: state.status }
    : { status: state.status, error: state.error };
}
