/**
 * Getting a skill's files into a staging folder, safely: copied from a local
 * folder, or downloaded as a `.tar.gz` pinned by its sha256 and extracted by
 * `tar`. Nothing from the skill runs at install time.
 *
 * An archive is checked before `tar` sees it: the download is capped and its
 * sha256 must match; the gzip stream is read in full (capped, so a
 * decompression bomb stops early) and every tar header is checked: only
 * files and folders, no absolute paths, no `..`, no links or devices. After
 * extraction the tree is walked again with `lstat` (no links, no file with
 * other names, size and count caps). A local folder gets the same walk.
 *
 * @module
 */
import { readCapped, TooLargeError } from "../bytes.ts";
import { resolveBinary } from "../exec/command.ts";
import { pathEnv } from "../exec/invocation.ts";

/** Largest archive downloaded, in bytes. */
export const MAX_ARCHIVE_BYTES = 20 * 1024 * 1024;
/** Largest total size of a skill's files (also the largest uncompressed tar stream). */
export const MAX_SKILL_BYTES = 64 * 1024 * 1024;
/** Most files and folders in one skill. */
export const MAX_SKILL_ENTRIES = 2000;
/** Env var that lets `http://` URLs on loopback through (tests serve archives locally). */
export const ALLOW_HTTP_LOOPBACK_ENV = "GW_SKILLS_ALLOW_HTTP_LOOPBACK";

/** An install that was refused or failed; `code` goes to `details.code`. */
export class SkillInstallError extends Error {
  /** Machine-readable reason, e.g. `SKILL_CHECKSUM_MISMATCH`. */
  readonly code: string;
  /** Whether trying again later may work (network failures). */
  readonly retryable: boolean;
  /** Create one. */
  constructor(code: string, message: string, retryable = false) {
    super(message);
    this.name = "SkillInstallError";
    this.code = code;
    this.retryable = retryable;
  }
}

const LOOPBACK_HOSTS = new Set(["127.0.0.1", "[::1]", "localhost"]);

/** Whether http:// URLs on loopback are allowed (the test-only env var is "1"). */
export function httpLoopbackAllowed(): boolean {
  try {
    return Deno.env.get(ALLOW_HTTP_LOOPBACK_ENV) === "1";
  } catch {
    return false;
  }
}

/**
 * Check an archive URL: https only (http on loopback when
 * {@link httpLoopbackAllowed}), no credentials. Returns the parsed URL.
 */
export function checkArchiveUrl(raw: string, allowHttpLoopback: boolean): URL {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new SkillInstallError("SKILL_SOURCE_INVALID", "url: not a valid URL");
  }
  if (u.username || u.password) {
    throw new SkillInstallError("SKILL_SOURCE_INVALID", "url: credentials in URLs are refused");
  }
  const loopbackHttp = u.protocol === "http:" && allowHttpLoopback &&
    LOOPBACK_HOSTS.has(u.hostname);
  if (u.protocol !== "https:" && !loopbackHttp) {
    throw new SkillInstallError(
      "SKILL_SOURCE_INVALID",
      `url: only https:// URLs are allowed, got ${u.protocol}//`,
    );
  }
  return u;
}

/**
 * Download `url` (at most {@link MAX_ARCHIVE_BYTES}) and check its sha256.
 * Nothing is written to disk.
 */
export async function downloadArchive(
  url: URL,
  sha256: string,
  opts: { timeoutMs: number; allowHttpLoopback: boolean },
): Promise<Uint8Array> {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(opts.timeoutMs), redirect: "follow" });
  } catch (e) {
    throw new SkillInstallError(
      "SKILL_DOWNLOAD_FAILED",
      `download failed: ${e instanceof Error ? e.message : String(e)}`,
      true,
    );
  }
  try {
    // A redirect must not leave https either.
    if (res.url) checkArchiveUrl(res.url, opts.allowHttpLoopback);
    if (res.status !== 200) {
      throw new SkillInstallError(
        "SKILL_DOWNLOAD_FAILED",
        `download failed: HTTP ${res.status}`,
        res.status >= 500 || res.status === 429,
      );
    }
    const declared = Number(res.headers.get("content-length") ?? "0");
    if (declared > MAX_ARCHIVE_BYTES) throw tooLarge();
    // node:crypto loads Node compat (megabytes): only when something is downloaded.
    const { createHash } = await import("node:crypto");
    const hash = createHash("sha256");
    let body: Uint8Array;
    try {
      body = await readCapped(res.body, MAX_ARCHIVE_BYTES, (c) => hash.update(c));
    } catch (e) {
      if (e instanceof TooLargeError) throw tooLarge();
      throw e;
    }
    const got = hash.digest("hex");
    if (got !== sha256.toLowerCase()) {
      throw new SkillInstallError(
        "SKILL_CHECKSUM_MISMATCH",
        `sha256 mismatch: expected ${sha256.toLowerCase()}, got ${got}; nothing was installed`,
      );
    }
    return body;
  } catch (e) {
    await res.body?.cancel().catch(() => {});
    if (e instanceof SkillInstallError) throw e;
    throw new SkillInstallError(
      "SKILL_DOWNLOAD_FAILED",
      `download failed: ${e instanceof Error ? e.message : String(e)}`,
      true,
    );
  }
}

function tooLarge(): SkillInstallError {
  return new SkillInstallError(
    "SKILL_ARCHIVE_REFUSED",
    `the archive is larger than ${MAX_ARCHIVE_BYTES} bytes`,
  );
}

function refused(message: string): SkillInstallError {
  return new SkillInstallError("SKILL_ARCHIVE_REFUSED", message);
}

/** Whether a relative entry path is safe to create under a folder. */
export function safeRelativePath(name: string): boolean {
  if (name === "" || name.includes("\0") || name.includes("\\")) return false;
  if (name.startsWith("/") || /^[A-Za-z]:/.test(name)) return false;
  return name.split("/").every((seg) => seg !== "..");
}

/**
 * Read a gzipped tar in memory and check every entry: regular files and
 * folders only, safe relative names, caps on count and total size.
 * Returns the entry names.
 */
export async function checkTarGz(bytes: Uint8Array): Promise<string[]> {
  const reader = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream()
    .pipeThrough(new DecompressionStream("gzip")).getReader();
  // Decompressed chunks not consumed yet; headers are read from them, file data skipped.
  const chunks: Uint8Array[] = [];
  let avail = 0;
  let total = 0;
  const pull = async (): Promise<boolean> => {
    let r: ReadableStreamReadResult<Uint8Array>;
    try {
      r = await reader.read();
    } catch (e) {
      throw refused(`not a gzip archive (${e instanceof Error ? e.message : String(e)})`);
    }
    if (r.done) return false;
    total += r.value.byteLength;
    if (total > MAX_SKILL_BYTES) {
      await reader.cancel().catch(() => {});
      throw refused(`the archive unpacks to more than ${MAX_SKILL_BYTES} bytes`);
    }
    chunks.push(r.value);
    avail += r.value.byteLength;
    return true;
  };
  /** The next `n` bytes, or null at the end of the stream. */
  const read = async (n: number): Promise<Uint8Array | null> => {
    while (avail < n) if (!await pull()) return null;
    const out = new Uint8Array(n);
    let off = 0;
    while (off < n) {
      const c = chunks[0]!;
      const k = Math.min(c.byteLength, n - off);
      out.set(c.subarray(0, k), off);
      off += k;
      if (k === c.byteLength) chunks.shift();
      else chunks[0] = c.subarray(k);
    }
    avail -= n;
    return out;
  };
  /** Drop the next `n` bytes; false when the stream ends first. */
  const skip = async (n: number): Promise<boolean> => {
    while (n > 0) {
      if (!chunks.length && !await pull()) return false;
      const c = chunks[0]!;
      const k = Math.min(c.byteLength, n);
      if (k === c.byteLength) chunks.shift();
      else chunks[0] = c.subarray(k);
      avail -= k;
      n -= k;
    }
    return true;
  };
  const dec = new TextDecoder();
  const cstr = (b: Uint8Array) => {
    const z = b.indexOf(0);
    return dec.decode(z < 0 ? b : b.subarray(0, z));
  };
  const octal = (b: Uint8Array) => {
    const s = cstr(b).trim();
    if (!/^[0-7]*$/.test(s)) throw refused("a tar header has a bad number");
    return s ? parseInt(s, 8) : 0;
  };
  const names: string[] = [];
  let longName: string | undefined;
  let paxPath: string | undefined;
  let sawHeader = false;
  for (;;) {
    const h = await read(512);
    if (!h) {
      if (!sawHeader) throw refused("not a tar archive");
      break; // missing end markers are tolerated (tar accepts them)
    }
    if (h.every((b) => b === 0)) break;
    sawHeader = true;
    if (dec.decode(h.subarray(257, 262)) !== "ustar") throw refused("not a ustar tar archive");
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
    if (sum !== octal(h.subarray(148, 156))) throw refused("a tar header has a bad checksum");
    const type = String.fromCharCode(h[156]!);
    const size = octal(h.subarray(124, 136));
    const padded = Math.ceil(size / 512) * 512;
    if (type === "L" || type === "x") {
      if (size > 65536) throw refused("a tar extended header is too large");
      const block = await read(padded);
      if (!block) throw refused("the archive is truncated");
      const data = block.subarray(0, size);
      if (type === "L") {
        longName = cstr(data);
        continue;
      }
      for (const rec of dec.decode(data).split("\n")) {
        const m = /^\d+ ([^=]+)=(.*)$/s.exec(rec);
        if (m?.[1] === "path") paxPath = m[2];
        if (m?.[1] === "linkpath") throw refused("links are not allowed in skill archives");
      }
      continue;
    }
    if (!await skip(padded)) throw refused("the archive is truncated");
    if (type === "g") continue;
    const prefix = cstr(h.subarray(345, 500));
    const base = cstr(h.subarray(0, 100));
    const name = (paxPath ?? longName ?? (prefix ? `${prefix}/${base}` : base)).replace(
      /^(\.\/)+/,
      "",
    );
    paxPath = longName = undefined;
    if (type !== "0" && type !== "\0" && type !== "5") {
      const what = type === "1" || type === "2" || type === "K"
        ? "links are not allowed in skill archives"
        : `entry ${JSON.stringify(name)} is not a file or folder (type ${JSON.stringify(type)})`;
      throw refused(what);
    }
    const clean = name.replace(/\/+$/, "");
    if (clean === "" || clean === ".") continue;
    if (!safeRelativePath(clean)) {
      throw refused(`entry ${JSON.stringify(name)} would land outside the skill folder`);
    }
    names.push(clean);
    if (names.length > MAX_SKILL_ENTRIES) {
      throw refused(`the archive has more than ${MAX_SKILL_ENTRIES} entries`);
    }
  }
  await reader.cancel().catch(() => {});
  return names;
}

/** Extract a checked archive into the empty folder `dest` with `tar`. */
export async function extractTarGz(archivePath: string, dest: string): Promise<void> {
  const tar = await resolveBinary("tar", { path: pathEnv(), cwd: "/" });
  if (!tar) {
    throw new SkillInstallError(
      "SKILL_INSTALL_UNAVAILABLE",
      "installing from an archive needs tar on PATH",
    );
  }
  const out = await new Deno.Command(tar, {
    args: ["-xzf", archivePath, "-C", dest, "--no-same-owner", "--no-same-permissions"],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
    clearEnv: true,
    env: { PATH: pathEnv(), LC_ALL: "C" },
  }).output();
  if (!out.success) {
    const why = new TextDecoder().decode(out.stderr).trim().split("\n").slice(-3).join("; ");
    throw refused(`tar could not extract the archive: ${why.slice(0, 500)}`);
  }
}

/**
 * Walk a staged skill folder with lstat: only files and folders, no links,
 * no hard-linked files, within the caps. Returns the file count and bytes.
 */
export async function checkTree(root: string): Promise<{ files: number; bytes: number }> {
  let files = 0;
  let bytes = 0;
  let entries = 0;
  const walk = async (dir: string): Promise<void> => {
    for await (const e of Deno.readDir(dir)) {
      const p = `${dir}/${e.name}`;
      const st = await Deno.lstat(p);
      if (++entries > MAX_SKILL_ENTRIES) {
        throw refused(`the skill has more than ${MAX_SKILL_ENTRIES} files and folders`);
      }
      if (st.isSymlink) throw refused(`links are not allowed in skills: ${e.name}`);
      if (st.isDirectory) await walk(p);
      else if (st.isFile) {
        if ((st.nlink ?? 1) > 1) throw refused(`hard-linked files are not allowed: ${e.name}`);
        files++;
        bytes += st.size;
        if (bytes > MAX_SKILL_BYTES) {
          throw refused(`the skill is larger than ${MAX_SKILL_BYTES} bytes`);
        }
      } else throw refused(`${e.name} is not a file or folder`);
    }
  };
  await walk(root);
  return { files, bytes };
}

/**
 * Copy the local folder `src` into the empty folder `dest`: files and
 * folders only (links are refused), within the caps. Skips `.git`.
 */
export async function copySkillFolder(src: string, dest: string): Promise<void> {
  let st: Deno.FileInfo;
  try {
    st = await Deno.stat(src);
  } catch {
    throw new SkillInstallError("SKILL_SOURCE_NOT_FOUND", `path: ${src} does not exist`);
  }
  if (!st.isDirectory) {
    throw new SkillInstallError("SKILL_SOURCE_INVALID", `path: ${src} is not a folder`);
  }
  let entries = 0;
  let bytes = 0;
  const walk = async (from: string, to: string): Promise<void> => {
    for await (const e of Deno.readDir(from)) {
      if (e.name === ".git") continue;
      const s = `${from}/${e.name}`;
      const d = `${to}/${e.name}`;
      const info = await Deno.lstat(s);
      if (++entries > MAX_SKILL_ENTRIES) {
        throw refused(`the skill has more than ${MAX_SKILL_ENTRIES} files and folders`);
      }
      if (info.isSymlink) throw refused(`links are not allowed in skills: ${s}`);
      if (info.isDirectory) {
        await Deno.mkdir(d, { mode: 0o700 });
        await walk(s, d);
      } else if (info.isFile) {
        bytes += info.size;
        if (bytes > MAX_SKILL_BYTES) {
          throw refused(`the skill is larger than ${MAX_SKILL_BYTES} bytes`);
        }
        await Deno.copyFile(s, d);
      } else throw refused(`${s} is not a file or folder`);
    }
  };
  await walk(src.replace(/\/+$/, "") || "/", dest);
}
