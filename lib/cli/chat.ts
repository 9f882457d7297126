/**
 * `gw chat` (a REPL on one session, replies streamed from `chat` events) and
 * `gw agent` (one turn through the two-phase `agent` method).
 *
 * @module
 */
import { type GatewayClient, GatewayRequestError } from "../client/client.ts";
import { messageText, preview, THINKING_LEVELS, thinkingLevelOf } from "../store/sessions.ts";
import type { TranscriptMessage } from "../agent/types.ts";
import {
  type CallOptions,
  connectClient,
  type Connection,
  Exit,
  reportRequestError,
  requestErrorMessage,
  UsageError,
} from "./call.ts";
import { bold, dim, red } from "./style.ts";

/** Options of {@link runChat}. */
export interface ChatOptions extends CallOptions {
  /** The session key. @default {"main"} */
  session?: string | undefined;
  /** Thinking level sent with every message (`off` ... `xhigh`). */
  thinking?: string | undefined;
}

/** Options of {@link runAgent}. */
export interface AgentOptions extends CallOptions {
  /** The session key; the gateway's default is the agent's `main`. */
  session?: string | undefined;
  /** Thinking level of the turn. */
  thinking?: string | undefined;
  /** Model override, `provider/model`. */
  model?: string | undefined;
}

/** A turn that ran longer than this without `--timeout` is given up (ms). */
const AGENT_DEFAULT_TIMEOUT_MS = 600_000;
/** History messages shown when `gw chat` starts, and by `/history`. */
const HISTORY_ON_START = 6;
const HISTORY_COMMAND = 20;
/** How long to wait for the gateway to confirm an abort before giving up on the run. */
const ABORT_GRACE_MS = 5_000;

const encoder = new TextEncoder();

/** Write `s` to stdout completely (no newline added). */
function write(s: string): void {
  const bytes = encoder.encode(s);
  let off = 0;
  while (off < bytes.length) off += Deno.stdout.writeSync(bytes.subarray(off));
}

function checkThinking(level: string | undefined): void {
  if (level !== undefined && !thinkingLevelOf(level)) {
    throw new UsageError(
      `--thinking: expected one of ${THINKING_LEVELS.join(", ")}, got '${level}'`,
    );
  }
}

interface _Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
}

function deferred<T>(): _Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

// ------------------------------------------------------------------ gw agent

/**
 * `gw agent "message"`: run one turn and print the reply (or, with `--json`,
 * the final payload). Ctrl-C aborts the run. Returns the exit code.
 *
 * @throws {UsageError} for a bad `--thinking` or `--timeout`.
 */
export async function runAgent(message: string, o: AgentOptions): Promise<number> {
  checkThinking(o.thinking);
  const conn = await connectClient(o, { defaultTimeoutMs: AGENT_DEFAULT_TIMEOUT_MS });
  if (typeof conn === "number") return conn;
  const { client } = conn;
  const runId = crypto.randomUUID();
  let interrupted = false;
  const onSigint = () => {
    if (interrupted) Deno.exit(130);
    interrupted = true;
    console.error(dim("aborting the run (Ctrl-C again to quit at once)"));
    client.request("chat.abort", { sessionKey: o.session ?? "main", runId }).catch(() => {});
  };
  Deno.addSignalListener("SIGINT", onSigint);
  try {
    const params: Record<string, unknown> = { message, idempotencyKey: runId };
    if (o.session !== undefined) params.sessionKey = o.session;
    if (o.thinking !== undefined) params.thinking = o.thinking;
    if (o.model !== undefined) params.model = o.model;
    // The run itself may not outlive the client's wait.
    if (o.timeout !== undefined) params.timeout = Math.max(1, Math.ceil(conn.timeoutMs / 1000));
    const result = await client.requestFinal("agent", params as never, {
      timeoutMs: conn.timeoutMs,
    }) as AgentFinal;
    if (o.json) console.log(JSON.stringify(result, null, 2));
    else {
      const text = (result.result?.payloads ?? []).map((p) => p.text ?? "").filter(Boolean)
        .join("\n\n");
      if (text) console.log(text);
    }
    // An aborted run answers with what streamed before the abort.
    if (result.status === "aborted" || result.summary === "aborted") {
      console.error(dim("the run was aborted"));
      return interrupted ? 130 : Exit.ERROR;
    }
    return Exit.OK;
  } catch (e) {
    if (interrupted && e instanceof GatewayRequestError && e.details?.code === "RUN_ABORTED") {
      console.error(dim("aborted"));
      return 130;
    }
    if (e instanceof GatewayRequestError && !o.json) {
      const kind = typeof e.details?.kind === "string" ? ` (${e.details.kind})` : "";
      console.error(`${red("error")} ${bold(e.code)}${kind}: ${requestErrorMessage(e, "agent")}`);
      return Exit.ERROR;
    }
    return reportRequestError(e, "agent", conn, o.json);
  } finally {
    Deno.removeSignalListener("SIGINT", onSigint);
    await client.close().catch(() => {});
  }
}

interface AgentFinal {
  status?: string;
  summary?: string;
  result?: { payloads?: { text?: string }[] };
}

// ------------------------------------------------------------------ reading lines

/** Where the REPL's lines come from. */
interface LineSource {
  /** Show the prompt (if any) and resolve with the next line; null at the end of input. */
  next(): Promise<string | null>;
  /** Ctrl-C while waiting for a line: true when it only cleared a half-typed line. */
  interrupt(): boolean;
  /** Restore the terminal. */
  close(): void;
}

/** Lines of piped stdin, no prompt, no echo. */
class PipedLines implements LineSource {
  #reader = Deno.stdin.readable.pipeThrough(new TextDecoderStream()).getReader();
  #buf = "";
  #done = false;

  async next(): Promise<string | null> {
    while (true) {
      const nl = this.#buf.indexOf("\n");
      if (nl >= 0) {
        const line = this.#buf.slice(0, nl).replace(/\r$/, "");
        this.#buf = this.#buf.slice(nl + 1);
        return line;
      }
      if (this.#done) {
        if (!this.#buf) return null;
        const line = this.#buf;
        this.#buf = "";
        return line;
      }
      const r = await this.#reader.read();
      if (r.done) this.#done = true;
      else this.#buf += r.value;
    }
  }

  interrupt(): boolean {
    return false;
  }

  close(): void {
    this.#reader.cancel().catch(() => {});
  }
}

/**
 * A small line editor on a terminal in cbreak mode (no echo, no line
 * buffering, Ctrl-C still raises SIGINT): typing, backspace, Ctrl-U, Ctrl-W,
 * Ctrl-D on an empty line ends the input. Keys typed while a reply streams are
 * kept and shown with the next prompt.
 */
class TtyLines implements LineSource {
  #prompt: string;
  #buf = "";
  #ready: string[] = [];
  #eof = false;
  #waiting: _Deferred<string | null> | undefined;
  #esc = 0; // 0 none, 1 after ESC, 2 inside CSI/SS3
  #reader = Deno.stdin.readable.pipeThrough(new TextDecoderStream()).getReader();

  #onCtrlC: () => void;

  constructor(prompt: string, onCtrlC: () => void) {
    this.#prompt = prompt;
    this.#onCtrlC = onCtrlC;
    Deno.stdin.setRaw(true, { cbreak: true });
    void this.#pump();
  }

  async #pump(): Promise<void> {
    try {
      while (true) {
        const r = await this.#reader.read();
        if (r.done) break;
        for (const ch of r.value) this.#key(ch);
      }
    } catch { /* stdin closed */ }
    this.#end();
  }

  #end(): void {
    this.#eof = true;
    const w = this.#waiting;
    this.#waiting = undefined;
    if (w) {
      write("\n");
      w.resolve(null);
    }
  }

  #key(ch: string): void {
    const echo = this.#waiting !== undefined;
    if (this.#esc === 1) {
      this.#esc = ch === "[" || ch === "O" ? 2 : 0;
      return;
    }
    if (this.#esc === 2) {
      if (ch >= "@" && ch <= "~") this.#esc = 0;
      return;
    }
    switch (ch) {
      case "\x1b":
        this.#esc = 1;
        return;
      case "\r":
      case "\n": {
        const line = this.#buf;
        this.#buf = "";
        const w = this.#waiting;
        if (w) {
          this.#waiting = undefined;
          write("\n");
          w.resolve(line);
        } else this.#ready.push(line);
        return;
      }
      case "\x7f":
      case "\b": {
        if (!this.#buf) return;
        const chars = [...this.#buf];
        chars.pop();
        this.#buf = chars.join("");
        if (echo) write("\b \b");
        return;
      }
      case "\x15": // Ctrl-U
        this.#buf = "";
        if (echo) this.#redraw();
        return;
      case "\x17": // Ctrl-W
        this.#buf = this.#buf.replace(/\S*\s*$/, "");
        if (echo) this.#redraw();
        return;
      case "\x04": // Ctrl-D
        if (!this.#buf) this.#end();
        return;
      case "\x03": // Ctrl-C arriving as a byte (ISIG off): same as the signal
        this.#onCtrlC();
        return;
    }
    if (ch < " " && ch !== "\t") return;
    this.#buf += ch;
    if (echo) write(ch);
  }

  #redraw(): void {
    write(`\r\x1b[K${this.#prompt}${this.#buf}`);
  }

  next(): Promise<string | null> {
    const line = this.#ready.shift();
    if (line !== undefined) {
      write(`${this.#prompt}${line}\n`);
      return Promise.resolve(line);
    }
    if (this.#eof) return Promise.resolve(null);
    write(`${this.#prompt}${this.#buf}`);
    this.#waiting = deferred<string | null>();
    return this.#waiting.promise;
  }

  interrupt(): boolean {
    if (!this.#buf) return false;
    this.#buf = "";
    if (this.#waiting) write(`^C\n${this.#prompt}`);
    return true;
  }

  close(): void {
    try {
      Deno.stdin.setRaw(false);
    } catch { /* not a terminal any more */ }
    this.#reader.cancel().catch(() => {});
  }
}

// ------------------------------------------------------------------ one streamed turn

type TurnEnd = "final" | "aborted" | "error" | "lost";

interface ChatEvent {
  runId?: string;
  state?: string;
  message?: { content?: unknown };
  errorMessage?: string;
  errorKind?: string;
}

interface AgentEvent {
  runId?: string;
  stream?: string;
  data?: { phase?: string; name?: string; isError?: boolean; args?: unknown };
}

function textOf(message: { content?: unknown } | undefined): string {
  const c = message?.content;
  if (typeof c === "string") return c;
  if (!Array.isArray(c)) return "";
  return c.map((b) => (b?.type === "text" && typeof b.text === "string" ? b.text : "")).join("");
}

/** Prints one run's `chat` and `agent` events as they come. */
class Turn {
  readonly runId: string = crypto.randomUUID();
  readonly done: _Deferred<TurnEnd> = deferred<TurnEnd>();
  ended = false;
  abortRequested = false;
  /** The reply text of the current model call printed so far. */
  #printed = "";
  /** The cursor is after text on the current line. */
  #midLine = false;
  #thinkingShown = false;

  #status(line: string): void {
    if (this.#midLine) write("\n");
    write(`${dim(line)}\n`);
    this.#midLine = false;
  }

  #text(full: string): void {
    if (full.startsWith(this.#printed)) write(full.slice(this.#printed.length));
    else write(`\n${full}`);
    this.#printed = full;
    if (full) this.#midLine = !full.endsWith("\n");
  }

  #finish(end: TurnEnd): void {
    if (this.ended) return;
    this.ended = true;
    this.done.resolve(end);
  }

  onChat(p: ChatEvent): void {
    if (this.ended) return;
    switch (p.state) {
      case "delta":
        this.#text(textOf(p.message));
        return;
      case "final": {
        const text = textOf(p.message);
        if (text || !this.#printed) this.#text(text);
        write("\n");
        this.#midLine = false;
        return this.#finish("final");
      }
      case "aborted":
        this.#status("[aborted]");
        return this.#finish("aborted");
      case "error": {
        if (this.#midLine) write("\n");
        this.#midLine = false;
        const kind = p.errorKind ? ` (${p.errorKind})` : "";
        console.error(red(`error${kind}: ${p.errorMessage ?? "the run failed"}`));
        return this.#finish("error");
      }
    }
  }

  onAgent(p: AgentEvent): void {
    if (this.ended) return;
    if (p.stream === "thinking") {
      if (!this.#thinkingShown && !this.#printed) this.#status("thinking…");
      this.#thinkingShown = true;
    } else if (p.stream === "tool" && p.data?.phase === "call") {
      let args = "";
      try {
        args = preview(JSON.stringify(p.data.args ?? {}), 60);
      } catch { /* not JSON */ }
      this.#status(`→ ${p.data.name ?? "tool"} ${args}`);
      // The next model call streams its own text from the start.
      this.#printed = "";
      this.#thinkingShown = false;
    } else if (p.stream === "tool" && p.data?.phase === "result" && p.data.isError) {
      this.#status(`  ${p.data.name ?? "tool"} failed`);
    }
  }

  /** The request failed or the connection went away. */
  fail(end: TurnEnd, message: string): void {
    if (this.ended) return;
    if (this.#midLine) write("\n");
    this.#midLine = false;
    console.error(red(message));
    this.#finish(end);
  }

  /** Stop waiting for a run the gateway did not confirm as aborted. */
  abandon(): void {
    this.#status("[stopped waiting for the run]");
    this.#finish("aborted");
  }
}

// ------------------------------------------------------------------ gw chat

interface HistoryMessage {
  role?: string;
  content?: unknown;
  timestamp?: number;
  toolName?: string;
  stopReason?: string;
}

const ROLE_LABEL: Record<string, string> = {
  user: "you",
  assistant: "assistant",
  toolResult: "tool",
  custom: "note",
};

/** The REPL: one connection, one session, lines in, streamed replies out. */
class Repl {
  readonly #client: GatewayClient;
  readonly #conn: Connection;
  readonly #session: string;
  readonly #thinking: string | undefined;
  #turn: Turn | undefined;
  #lost = false;
  #closing = false;
  failed = false;

  constructor(
    conn: Connection,
    o: { session: string; thinking: string | undefined; onLost: () => void },
  ) {
    const { session, onLost } = o;
    this.#conn = conn;
    this.#client = conn.client;
    this.#session = session;
    this.#thinking = o.thinking;
    this.#client.on("chat", (p) => {
      const t = this.#turn;
      if (t && (p as ChatEvent).runId === t.runId) t.onChat(p as ChatEvent);
    });
    this.#client.on("agent", (p) => {
      const t = this.#turn;
      if (t && (p as AgentEvent).runId === t.runId) t.onAgent(p as AgentEvent);
    });
    this.#client.onState((state) => {
      if (state !== "closed" || this.#lost || this.#closing) return;
      this.#lost = true;
      const message = `gw: lost the connection to ${conn.target.url}`;
      const t = this.#turn;
      if (t && !t.ended) t.fail("lost", message);
      else console.error(red(`\n${message}`));
      onLost();
    });
  }

  /** Close the connection on purpose. */
  async close(): Promise<void> {
    this.#closing = true;
    await this.#client.close().catch(() => {});
  }

  get lost(): boolean {
    return this.#lost;
  }

  get running(): boolean {
    return this.#turn !== undefined && !this.#turn.ended;
  }

  /** Ctrl-C during a run: ask the gateway to abort it; a second Ctrl-C stops waiting. */
  interrupt(): void {
    const t = this.#turn;
    if (!t || t.ended) return;
    if (t.abortRequested) return t.abandon();
    t.abortRequested = true;
    this.#client.request("chat.abort", { sessionKey: this.#session, runId: t.runId })
      .catch(() => {});
    // The gateway confirms with an `aborted` chat event; do not hang if it never comes.
    const timer = setTimeout(() => t.abandon(), ABORT_GRACE_MS);
    void t.done.promise.then(() => clearTimeout(timer));
  }

  /** Send one message and print the reply as it streams. */
  async send(message: string): Promise<TurnEnd> {
    const turn = new Turn();
    this.#turn = turn;
    const params: Record<string, unknown> = {
      sessionKey: this.#session,
      message,
      idempotencyKey: turn.runId,
    };
    if (this.#thinking !== undefined) params.thinking = this.#thinking;
    try {
      const ack = await this.#client.request("chat.send", params as never) as {
        status?: string;
      };
      if (ack.status !== "started" && ack.status !== "in_flight") {
        turn.fail("error", `chat.send answered ${ack.status}`);
      }
    } catch (e) {
      if (e instanceof GatewayRequestError) {
        turn.fail("error", `error ${e.code}: ${requestErrorMessage(e, "chat.send")}`);
      } else if (!this.#lost) {
        turn.fail("lost", `gw: chat.send failed: ${(e as Error).message}`);
      }
    }
    const end = await turn.done.promise;
    if (end === "error") this.failed = true;
    return end;
  }

  /** Print the last `limit` messages, dim. */
  async history(limit: number, full: boolean): Promise<void> {
    let r: { messages?: HistoryMessage[]; totalMessages?: number };
    try {
      r = await this.#client.request("chat.history", { sessionKey: this.#session, limit }) as {
        messages?: HistoryMessage[];
      };
    } catch (e) {
      reportRequestError(e, "chat.history", this.#conn);
      return;
    }
    const msgs = r.messages ?? [];
    if (!msgs.length) {
      if (full) console.log(dim("(no messages yet)"));
      return;
    }
    const more = (r.totalMessages ?? msgs.length) - msgs.length;
    if (more > 0) console.log(dim(`… ${more} earlier message(s)`));
    for (const m of msgs) {
      const label = ROLE_LABEL[m.role ?? ""] ?? m.role ?? "?";
      const text = messageText(m as TranscriptMessage);
      const who = (m.role === "toolResult" && m.toolName ? `${label} ${m.toolName}` : label) +
        (m.stopReason === "aborted" ? " (aborted)" : "");
      console.log(dim(`${who}: ${full ? text : preview(text, 200)}`));
    }
  }

  /** `/new`: a fresh transcript for the session. */
  async reset(): Promise<void> {
    try {
      await this.#client.request("sessions.reset", { key: this.#session });
    } catch (e) {
      // A session that never had a message is already new.
      if (!(e instanceof GatewayRequestError && e.details?.code === "SESSION_NOT_FOUND")) {
        reportRequestError(e, "sessions.reset", this.#conn);
        return;
      }
    }
    console.log(dim("started a new session"));
  }
}

/**
 * `gw chat`: a REPL on one session. On a terminal: history first, a prompt,
 * replies streamed; Ctrl-C aborts a running reply, Ctrl-C on an empty prompt
 * or Ctrl-D quits. Off a terminal: every stdin line is sent in turn and its
 * reply printed. Returns the exit code (0, 1 when a turn failed off a
 * terminal, 3 when the connection fails).
 *
 * @throws {UsageError} for a bad `--thinking` or `--timeout`.
 */
export async function runChat(o: ChatOptions): Promise<number> {
  checkThinking(o.thinking);
  const tty = Deno.stdin.isTerminal();
  const conn = await connectClient(o);
  if (typeof conn === "number") return conn;
  const session = o.session ?? "main";
  const quit = deferred<null>();
  const repl = new Repl(conn, {
    session,
    thinking: o.thinking,
    onLost: () => quit.resolve(null),
  });
  let lines: LineSource | undefined;
  const onSigint = () => {
    if (repl.running) repl.interrupt();
    else if (!lines?.interrupt()) quit.resolve(null);
  };
  Deno.addSignalListener("SIGINT", onSigint);
  try {
    if (tty) {
      console.log(dim(`gw chat · session ${session} · /new /history /quit · Ctrl-D quits`));
      await repl.history(HISTORY_ON_START, false);
    }
    lines = tty ? new TtyLines(`${bold(">")} `, onSigint) : new PipedLines();
    while (!repl.lost) {
      const line = await Promise.race([lines.next(), quit.promise]);
      if (line === null) break;
      const text = line.trim();
      if (!text) continue;
      if (text === "/quit" || text === "/exit") break;
      if (text === "/new") await repl.reset();
      else if (text === "/history") await repl.history(HISTORY_COMMAND, true);
      else if (/^\/\w+$/.test(text)) console.log(dim("commands: /new /history /quit"));
      else await repl.send(text);
    }
    if (repl.lost) return Exit.CONNECT;
    return !tty && repl.failed ? Exit.ERROR : Exit.OK;
  } finally {
    Deno.removeSignalListener("SIGINT", onSigint);
    lines?.close();
    await repl.close();
  }
}
