/**
 * gw's log: JSON lines in `<state>/logs/gw.log` (rotated by size) and a
 * readable line on stderr. Secrets never reach it: fields named like secrets
 * are redacted.
 *
 * @module
 */
import { SECRET_KEYS } from "./config/schema.ts";

/** Log levels, least severe first. */
export type LogLevel = "debug" | "info" | "warn" | "error";
const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Options of {@link Logger}. */
export interface LoggerOptions {
  /** The JSON-lines file; none when absent. */
  file?: string;
  /** Least severe level written. Default `info`. */
  level?: LogLevel;
  /** Rotate when the file passes this size. Default 10 MiB. */
  maxFileBytes?: number;
  /** Rotated files kept (`gw.log.1` … `gw.log.N`). Default 3. */
  maxFiles?: number;
  /** Write readable lines to stderr too. Default true. */
  stderr?: boolean;
}

function clean(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    out[k] = SECRET_KEYS.has(k) ? "[redacted]" : v instanceof Error ? v.message : v;
  }
  return out;
}

const encoder = new TextEncoder();

/**
 * A small synchronous logger. Writes are appends of whole lines, so a crash
 * never leaves half a line behind another process's view.
 *
 * @example
 * ```ts
 * const log = new Logger({ file: "/tmp/gw.log" });
 * log.info("listening", { port: 18789 });
 * ```
 */
export class Logger {
  /** Path of the JSON-lines file, if any. */
  readonly file: string | undefined;
  #level: number;
  #maxFileBytes: number;
  #maxFiles: number;
  #stderr: boolean;
  #fd: Deno.FsFile | undefined;
  #size = 0;

  /** Open the log. */
  constructor(options: LoggerOptions = {}) {
    this.file = options.file;
    this.#level = RANK[options.level ?? "info"];
    this.#maxFileBytes = options.maxFileBytes ?? 10 * 1024 * 1024;
    this.#maxFiles = options.maxFiles ?? 3;
    this.#stderr = options.stderr ?? true;
    if (this.file) this.#open();
  }

  /** Change level and rotation settings at run time. */
  configure(options: Omit<LoggerOptions, "file" | "stderr">): void {
    if (options.level) this.#level = RANK[options.level];
    if (options.maxFileBytes) this.#maxFileBytes = options.maxFileBytes;
    if (options.maxFiles) this.#maxFiles = options.maxFiles;
  }

  /** Log at debug level. */
  debug(msg: string, fields: Record<string, unknown> = {}): void {
    this.#write("debug", msg, fields);
  }
  /** Log at info level. */
  info(msg: string, fields: Record<string, unknown> = {}): void {
    this.#write("info", msg, fields);
  }
  /** Log at warn level. */
  warn(msg: string, fields: Record<string, unknown> = {}): void {
    this.#write("warn", msg, fields);
  }
  /** Log at error level. */
  error(msg: string, fields: Record<string, unknown> = {}): void {
    this.#write("error", msg, fields);
  }

  /** Close the file. */
  close(): void {
    this.#fd?.close();
    this.#fd = undefined;
  }

  #open(): void {
    const file = this.file!;
    Deno.mkdirSync(file.slice(0, file.lastIndexOf("/")), { recursive: true, mode: 0o700 });
    this.#fd = Deno.openSync(file, { append: true, create: true, mode: 0o600 });
    this.#size = this.#fd.statSync().size;
  }

  #rotate(): void {
    const file = this.file!;
    this.#fd?.close();
    for (let i = this.#maxFiles - 1; i >= 1; i--) {
      try {
        Deno.renameSync(`${file}.${i}`, `${file}.${i + 1}`);
      } catch { /* absent */ }
    }
    try {
      Deno.renameSync(file, `${file}.1`);
    } catch { /* absent */ }
    try {
      Deno.removeSync(`${file}.${this.#maxFiles + 1}`);
    } catch { /* absent */ }
    this.#open();
  }

  #write(level: LogLevel, msg: string, fields: Record<string, unknown>): void {
    if (RANK[level] < this.#level) return;
    const ts = new Date().toISOString();
    const data = clean(fields);
    if (this.#fd) {
      try {
        // The field names OpenClaw's `logs` command reads: time, level, subsystem, message.
        const line = encoder.encode(
          JSON.stringify({ time: ts, level, subsystem: "gateway", message: msg, ...data }) + "\n",
        );
        if (this.#size + line.length > this.#maxFileBytes) this.#rotate();
        this.#fd!.writeSync(line);
        this.#size += line.length;
      } catch {
        // A full disk must not take the gateway down; stderr still gets the line.
      }
    }
    if (this.#stderr) {
      const extra = Object.entries(data).map(([k, v]) =>
        `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`
      ).join(" ");
      console.error(`${ts.slice(11, 19)} ${level.padEnd(5)} ${msg}${extra ? " " + extra : ""}`);
    }
  }
}
