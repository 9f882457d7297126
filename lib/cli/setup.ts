/**
 * `gw setup`: the onboarding wizard in a terminal. It asks the wizard's
 * questions one by one (gateway access, a model with its key checked, an
 * optional Telegram bot, optional spoken replies, a review) and saves
 * nothing until the review's yes.
 *
 * With the gateway running it goes through it (`wizard.start` /
 * `wizard.next`), so the gateway checks the keys, writes gw.json and applies
 * it at once; without one it runs the same step machine (lib/wizard) in this
 * process and writes `<state>/gw.json` itself (mode 0600), for the next
 * `gw start`.
 *
 * Input: a line per answer. On a terminal, secrets are read with echo off
 * (raw mode); piped stdin works too (one answer per line). Ctrl-C cancels
 * the wizard (nothing saved, exit 130); input that ends early cancels it too
 * (exit 1). Secrets are never printed; a generated gateway token is shown
 * once, and only on a terminal (as `gw start` does).
 *
 * @module
 */
import { GatewayRequestError } from "../client/client.ts";
import {
  type CallOptions,
  connectClient,
  Exit,
  parseTimeout,
  requestErrorMessage,
  resolveTarget,
} from "./call.ts";
import { resolveStateDir, tildify } from "./paths.ts";
import { bold, dim, green, red, yellow } from "./style.ts";
import type {
  WizardAnswer,
  WizardNextResult,
  WizardStartResult,
  WizardStep,
} from "../wizard/types.ts";

/** Options of {@link runSetup}. */
export interface SetupOptions extends CallOptions {
  /** `channels`: only the chat channel steps. @default {"setup"} */
  flow?: "setup" | "channels" | undefined;
}

/** How long a wizard request may take (a key check waits up to 20 s). */
const REQUEST_TIMEOUT_MS = 60_000;
const enc = new TextEncoder();

function write(text: string): void {
  Deno.stdout.writeSync(enc.encode(text));
}

// ------------------------------------------------------------------ input

/** Ctrl-C. */
class Interrupted extends Error {
  constructor() {
    super("interrupted");
    this.name = "Interrupted";
  }
}

/** stdin ended before the wizard did. */
class InputEnded extends Error {
  constructor() {
    super("input ended");
    this.name = "InputEnded";
  }
}

/**
 * stdin as answers: lines, and secrets read with echo off when stdin is a
 * terminal. One reader for both, so bytes typed ahead are never lost.
 */
class Input {
  readonly tty: boolean;
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  #buf: Uint8Array = new Uint8Array(0);
  #eof = false;

  constructor() {
    this.tty = Deno.stdin.isTerminal();
    this.#reader = Deno.stdin.readable.getReader();
  }

  async #fill(): Promise<boolean> {
    if (this.#eof) return false;
    const { value, done } = await this.#reader.read();
    if (done || !value) {
      this.#eof = true;
      return false;
    }
    const next = new Uint8Array(this.#buf.length + value.length);
    next.set(this.#buf);
    next.set(value, this.#buf.length);
    this.#buf = next;
    return true;
  }

  /** One line without its end; throws {@link InputEnded} at the end of input. */
  async line(): Promise<string> {
    for (;;) {
      const nl = this.#buf.indexOf(0x0a);
      if (nl >= 0) {
        const text = new TextDecoder().decode(this.#buf.subarray(0, nl));
        this.#buf = this.#buf.subarray(nl + 1);
        return text.replace(/\r$/, "");
      }
      if (!await this.#fill()) {
        if (!this.#buf.length) throw new InputEnded();
        const text = new TextDecoder().decode(this.#buf);
        this.#buf = new Uint8Array(0);
        return text.replace(/\r$/, "");
      }
    }
  }

  /**
   * A secret: on a terminal in raw mode (no echo; Backspace and Ctrl-U edit,
   * Ctrl-C interrupts, Ctrl-D on an empty answer ends the input), else a line.
   * `prompt` is written once echo is off.
   */
  async secret(prompt: string): Promise<string> {
    if (!this.tty) {
      write(prompt);
      const text = await this.line();
      write("\n"); // piped: nothing was echoed, and the secret is not either
      return text.trim();
    }
    Deno.stdin.setRaw(true);
    const bytes: number[] = [];
    try {
      write(prompt);
      for (;;) {
        if (!this.#buf.length && !await this.#fill()) throw new InputEnded();
        const b = this.#buf[0]!;
        this.#buf = this.#buf.subarray(1);
        if (b === 0x03) throw new Interrupted();
        if (b === 0x04) {
          if (!bytes.length) throw new InputEnded();
          continue;
        }
        if (b === 0x0d || b === 0x0a) {
          // A pasted "\r\n": its "\n" is not the next answer's Enter.
          if (b === 0x0d && this.#buf[0] === 0x0a) this.#buf = this.#buf.subarray(1);
          break;
        }
        if (b === 0x7f || b === 0x08) {
          while (bytes.length && (bytes.at(-1)! & 0xc0) === 0x80) bytes.pop();
          bytes.pop();
        } else if (b === 0x15) bytes.length = 0;
        else if (b === 0x1b) await this.#skipEscape();
        else if (b >= 0x20) bytes.push(b);
      }
    } finally {
      Deno.stdin.setRaw(false);
      write("\n");
    }
    return new TextDecoder().decode(new Uint8Array(bytes)).trim();
  }

  /** Skip the rest of an escape sequence (arrow keys and the like). */
  async #skipEscape(): Promise<void> {
    if (!this.#buf.length && !await this.#fill()) return;
    if (this.#buf[0] !== 0x5b && this.#buf[0] !== 0x4f) return;
    this.#buf = this.#buf.subarray(1);
    for (;;) {
      if (!this.#buf.length && !await this.#fill()) return;
      const b = this.#buf[0]!;
      this.#buf = this.#buf.subarray(1);
      if (b >= 0x40 && b <= 0x7e) return;
    }
  }
}

// ------------------------------------------------------------------ drivers

/** Where the wizard runs: through the gateway, or in this process. */
interface Driver {
  /** Through a running gateway (it applies the result at once). */
  readonly live: boolean;
  start(flow: "setup" | "channels"): Promise<WizardStartResult>;
  next(sessionId: string, answer?: WizardAnswer): Promise<WizardNextResult>;
  cancel(sessionId: string): Promise<void>;
  close(): Promise<void>;
}

/** The wizard's busy error (another wizard runs), or null. */
function busyOf(e: unknown): { sessionId?: string } | null {
  if (!(e instanceof GatewayRequestError)) return null;
  if (e.details?.code !== "SETUP_ADMISSION_BUSY") return null;
  const sid = e.details.sessionId;
  return typeof sid === "string" ? { sessionId: sid } : {};
}

async function listening(url: string): Promise<boolean> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return true; // connectClient says what is wrong with it
  }
  const port = Number(u.port || (u.protocol === "wss:" || u.protocol === "https:" ? 443 : 80));
  const hostname = u.hostname.replace(/^\[|\]$/g, "");
  try {
    const conn = await Deno.connect({ hostname, port });
    conn.close();
    return true;
  } catch (e) {
    return !(e instanceof Deno.errors.ConnectionRefused);
  }
}

function isLoopback(url: string): boolean {
  try {
    const h = new URL(url).hostname.replace(/^\[|\]$/g, "");
    return h === "localhost" || h === "::1" || /^127\./.test(h);
  } catch {
    return false;
  }
}

function envGet(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/** The wizard in this process, on `<stateDir>/gw.json`. */
async function localDriver(stateDir: string): Promise<Driver & { path: string }> {
  const { ConfigFile } = await import("../config/mod.ts");
  const { WizardSessions } = await import("../wizard/sessions.ts");
  const { MemoryWizardStore } = await import("../wizard/store.ts");
  const config = await ConfigFile.open(`${stateDir}/gw.json`);
  const wizards = new WizardSessions(new MemoryWizardStore(), {
    stateDir,
    config,
    live: false,
    env: envGet,
    applyConfig: () => Promise.resolve([]),
    now: () => Date.now(),
  });
  return {
    live: false,
    path: config.path,
    start: (flow) => wizards.start({ flow }),
    next: (sid, answer) => wizards.next(sid, answer),
    cancel: async (sid) => void await wizards.cancel(sid),
    close: () => Promise.resolve(),
  };
}

// ------------------------------------------------------------------ prompts

/** Asks the steps in the terminal. */
class Prompter {
  readonly #input: Input;
  readonly #interrupted: Promise<never>;
  #title: string | undefined;

  constructor(input: Input, interrupted: Promise<never>) {
    this.#input = input;
    this.#interrupted = interrupted;
  }

  /** `p`, unless Ctrl-C comes first. */
  race<T>(p: Promise<T>): Promise<T> {
    return Promise.race([p, this.#interrupted]);
  }

  async #line(prompt: string): Promise<string> {
    write(prompt);
    const text = (await this.race(this.#input.line())).trim();
    // Piped answers are not echoed by a terminal: show them, so the output reads as a dialogue.
    if (!this.#input.tty) write(`${text}\n`);
    return text;
  }

  /** Ask `step`; returns its answer value (undefined for a note). */
  async ask(step: WizardStep, error: string | undefined): Promise<unknown> {
    if (step.title && step.title !== this.#title) {
      this.#title = step.title;
      write(`\n${bold(step.title)}\n`);
    }
    if (error) write(`${red("✗")} ${error}\n`);
    const message = step.message ?? "";
    switch (step.type) {
      case "select":
        return await this.#select(step, message);
      case "confirm":
        return await this.#confirm(step, message);
      case "text":
        return await this.#text(step, message);
      default:
        if (message) write(`${message}\n`);
        return undefined;
    }
  }

  async #select(step: WizardStep, message: string): Promise<unknown> {
    const options = step.options ?? [];
    write(`${message}\n`);
    const initial = options.findIndex((o) => o.value === step.initialValue);
    options.forEach((o, i) => {
      const hint = o.hint ? dim(` — ${o.hint}`) : "";
      write(`  ${i + 1}) ${o.label}${hint}\n`);
    });
    const dflt = initial >= 0 ? ` [${initial + 1}]` : "";
    for (;;) {
      const text = await this.#line(`Choose 1-${options.length}${dflt}: `);
      if (!text && initial >= 0) return options[initial]!.value;
      const n = Number(text);
      if (Number.isInteger(n) && n >= 1 && n <= options.length) return options[n - 1]!.value;
      const named = options.find((o) => String(o.value) === text);
      if (named) return named.value;
      write(`${yellow("?")} Type a number from 1 to ${options.length}.\n`);
    }
  }

  async #confirm(step: WizardStep, message: string): Promise<boolean> {
    const lines = message.split("\n");
    const last = lines.pop() ?? "";
    for (const l of lines) write(l ? `  ${l}\n` : "\n");
    const yes = step.initialValue !== false;
    for (;;) {
      const text = (await this.#line(`${last} ${yes ? "[Y/n]" : "[y/N]"} `)).toLowerCase();
      if (!text) return yes;
      if (text === "y" || text === "yes") return true;
      if (text === "n" || text === "no") return false;
      write(`${yellow("?")} Answer y or n.\n`);
    }
  }

  async #text(step: WizardStep, message: string): Promise<string> {
    if (step.sensitive) {
      return await this.race(this.#input.secret(`${message}\n${dim("(input hidden)")} > `));
    }
    const initial = typeof step.initialValue === "string" && step.initialValue
      ? ` [${step.initialValue}]`
      : step.placeholder
      ? dim(` (e.g. ${step.placeholder})`)
      : "";
    return await this.#line(`${message}${initial}: `);
  }
}

// ------------------------------------------------------------------ the command

/**
 * Run `gw setup`; resolves with the exit code: 0 saved (or nothing to
 * save), 1 an error or input that ended early, 3 cannot connect, 130 Ctrl-C.
 *
 * @throws {UsageError} for a bad `--timeout`.
 */
export async function runSetup(o: SetupOptions): Promise<number> {
  const flow = o.flow ?? "setup";
  const stateDir = resolveStateDir(o.stateDir);
  const timeout = parseTimeout(o.timeout, REQUEST_TIMEOUT_MS);
  const target = await resolveTarget(o);
  let driver: Driver;
  let where: string;
  if (await listening(target.url)) {
    const conn = await connectClient({ ...o, timeout: String(timeout) }, {
      defaultTimeoutMs: REQUEST_TIMEOUT_MS,
    });
    if (typeof conn === "number") return conn;
    const req = <T>(method: string, params: unknown) =>
      conn.client.request(method, params, { timeoutMs: conn.timeoutMs }) as Promise<T>;
    driver = {
      live: true,
      start: (f) => req<WizardStartResult>("wizard.start", { flow: f }),
      next: (sessionId, answer) =>
        req<WizardNextResult>("wizard.next", answer ? { sessionId, answer } : { sessionId }),
      cancel: async (sessionId) => void await req("wizard.cancel", { sessionId }),
      close: () => conn.client.close().catch(() => {}),
    };
    where = `through the gateway at ${target.url}`;
  } else {
    if (o.url !== undefined && !isLoopback(target.url)) {
      console.error(`${red("gw:")} cannot connect to ${target.url}: nothing answered there`);
      return Exit.CONNECT;
    }
    try {
      const local = await localDriver(stateDir);
      driver = local;
      where = `no gateway is running, so it writes ${tildify(local.path)} itself`;
    } catch (e) {
      console.error(`${red("gw:")} ${(e as Error).message}`);
      return Exit.ERROR;
    }
  }

  let onSigint = () => {};
  const interrupted = new Promise<never>((_, reject) => {
    onSigint = () => reject(new Interrupted());
  });
  interrupted.catch(() => {});
  const canSignal = Deno.build.os !== "windows";
  if (canSignal) Deno.addSignalListener("SIGINT", onSigint);
  const input = new Input();
  const ui = new Prompter(input, interrupted);
  let sessionId: string | undefined;
  const answers = new Map<string, unknown>();
  try {
    write(
      `${bold("gw setup")}: a few questions to get this gateway ready (${where}).\n` +
        dim("Enter takes the [default]; Ctrl-C cancels without saving anything.\n"),
    );
    let r: WizardNextResult;
    try {
      const s = await ui.race(driver.start(flow));
      sessionId = s.sessionId;
      r = s;
    } catch (e) {
      const busy = busyOf(e);
      if (!busy?.sessionId) throw e;
      write(`\n${yellow("Another setup is in progress on this gateway.")}\n`);
      const choice = await ui.ask({
        id: "busy",
        type: "select",
        message: "What now?",
        options: [
          { value: "continue", label: "Continue it here" },
          { value: "restart", label: "Cancel it and start over" },
          { value: "quit", label: "Leave it and quit" },
        ],
        initialValue: "continue",
      }, undefined);
      if (choice === "quit") return Exit.OK;
      if (choice === "restart") {
        await ui.race(driver.cancel(busy.sessionId));
        const s = await ui.race(driver.start(flow));
        sessionId = s.sessionId;
        r = s;
      } else {
        sessionId = busy.sessionId;
        r = await ui.race(driver.next(sessionId));
      }
    }
    while (!r.done && r.step) {
      const step = r.step;
      const value = await ui.ask(step, r.error);
      answers.set(step.id.split("#")[0]!, value);
      if (step.sensitive && /^(model|telegram)\./.test(step.id)) write(dim("Checking…\n"));
      const answer: WizardAnswer = value === undefined
        ? { stepId: step.id }
        : { stepId: step.id, value };
      r = await ui.race(driver.next(sessionId, answer));
    }
    sessionId = undefined;
    return await finished(r, driver, stateDir, target.url, answers);
  } catch (e) {
    const id = sessionId;
    if (id !== undefined) await driver.cancel(id).catch(() => {});
    if (e instanceof Interrupted) {
      write(`\n${yellow("Setup cancelled")}; nothing was saved.\n`);
      return 130;
    }
    if (e instanceof InputEnded) {
      write(`\n`);
      console.error(`${red("gw:")} the input ended before setup was done; nothing was saved`);
      return Exit.ERROR;
    }
    if (e instanceof GatewayRequestError) {
      console.error(`${red("gw:")} ${requestErrorMessage(e, e.method ?? "wizard")}`);
      return Exit.ERROR;
    }
    if (driver.live) {
      console.error(
        `${red("gw:")} lost the gateway during setup (${(e as Error).message}); ` +
          "run gw setup again to continue where you were",
      );
      return Exit.CONNECT;
    }
    throw e;
  } finally {
    if (canSignal) Deno.removeSignalListener("SIGINT", onSigint);
    await driver.close();
  }
}

/** Say how it ended; returns the exit code. */
async function finished(
  r: WizardNextResult,
  driver: Driver,
  stateDir: string,
  url: string,
  answers: Map<string, unknown>,
): Promise<number> {
  if (r.status === "cancelled") {
    write(`\n${yellow("Nothing was saved.")}\n`);
    return Exit.OK;
  }
  if (r.status !== "done") {
    console.error(`${red("gw:")} setup failed: ${r.error ?? "unknown error"}`);
    return Exit.ERROR;
  }
  const auth = answers.get("auth.mode");
  const changed = r.modelActivation || r.channels?.length ||
    (auth !== undefined && auth !== "keep") ||
    [...answers.entries()].some(([k, v]) => k === "tts.provider" && v !== "skip");
  if (!changed) {
    write(`\n${green("✓")} Nothing to change.\n`);
    return Exit.OK;
  }
  write(
    `\n${green("✓")} Saved${
      driver.live ? "; the gateway applied it" : ` to ${tildify(`${stateDir}/gw.json`)}`
    }.\n`,
  );
  if (r.modelActivation) write(`  Model: ${r.modelActivation.modelRef}\n`);
  if (r.channels?.includes("telegram")) {
    write(
      "  Telegram: message your bot; the first message gets a pairing code, which you approve with\n" +
        "            gw pairing approve telegram <CODE>\n",
    );
  }
  if (auth === "password") {
    write(
      "  Clients now sign in with the password you chose (gw commands: --password or GW_PASSWORD).\n",
    );
  }
  if (auth === "token") await showToken(stateDir, url);
  if (!driver.live) write(`  Start the gateway with: ${bold("gw start")}\n`);
  return Exit.OK;
}

/** Show a newly generated token once, on a terminal only (as `gw start` does). */
async function showToken(stateDir: string, url: string): Promise<void> {
  const path = `${stateDir}/gw.json`;
  let token: string | undefined;
  if (isLoopback(url)) {
    try {
      const cfg = JSON.parse(await Deno.readTextFile(path));
      token = typeof cfg?.gateway?.auth?.token === "string" ? cfg.gateway.auth.token : undefined;
    } catch { /* not this machine's gateway, or unreadable */ }
  }
  if (!token) {
    write("  A new access token was generated; give it to your other clients.\n");
    return;
  }
  if (Deno.stdout.isTerminal()) {
    write(
      `  New access token: ${token}\n` +
        `  It is shown only now; gw on this machine reads it from ${tildify(path)}.\n`,
    );
  } else {
    write(
      `  A new access token is in ${tildify(path)} (not printed: this output is not a terminal).\n`,
    );
  }
}
