/**
 * Skills: folders with a `SKILL.md` whose instructions are offered to the
 * agent (OpenClaw's design). They live in `<stateDir>/skills/<name>/`.
 *
 * - The system prompt lists the skills that are enabled and eligible (name,
 *   description, the path of SKILL.md); the agent reads one with the
 *   `read_skill` tool when a task matches it.
 * - Eligible: the binaries the skill requires are on PATH, its environment
 *   variables are set (names are checked, values never read out), its
 *   platform matches, its config paths are truthy.
 * - Installed skills are third-party code and prose: they are off until an
 *   operator enables them (`skills.update {skillKey, enabled: true}`, kept as
 *   `skills.entries.<name>.enabled` in gw.json, OpenClaw's naming).
 * - Installing copies a local folder or downloads an https `.tar.gz` pinned
 *   by its sha256 ({@link ./install.ts}); nothing from the skill runs.
 *
 * @module
 */
import type { ConfigFile } from "../config/mod.ts";
import { mergePatch } from "../config/mod.ts";
import type { Logger } from "../log.ts";
import { sha256Hex } from "../fs.ts";
import { resolveBinary } from "../exec/command.ts";
import { pathEnv } from "../exec/invocation.ts";
import type { Tool } from "../agent/tools.ts";
import { parseSkillFile, type SkillInstallHint, type SkillRequirements } from "./frontmatter.ts";
import {
  checkArchiveUrl,
  checkTarGz,
  checkTree,
  copySkillFolder,
  downloadArchive,
  extractTarGz,
  httpLoopbackAllowed,
  safeRelativePath,
  SkillInstallError,
} from "./install.ts";

export { SkillInstallError } from "./install.ts";
export type { SkillManifest, SkillRequirements } from "./frontmatter.ts";

/** A skill's name (its folder's name and its key in the config). */
export const SKILL_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/i;
/** Largest SKILL.md (or other skill file) read, in bytes. */
export const MAX_SKILL_FILE_BYTES = 256 * 1024;
/** Most skills listed in the system prompt. */
export const MAX_SKILLS_IN_PROMPT = 100;
/** How long a PATH lookup of a required binary is trusted. */
const BIN_CACHE_MS = 30_000;
/** How long a scan of the skills folder is reused (installs and updates refresh it). */
const SCAN_CACHE_MS = 5_000;
/** Written into each installed skill's folder: where it came from. */
const INSTALL_RECORD = ".gw-install.json";

/** Where an installed skill came from, kept for `skills.update`. */
export interface InstallRecord {
  kind: "path" | "url";
  /** The local folder it was copied from. */
  path?: string;
  /** The archive URL. */
  url?: string;
  /** The archive's sha256. */
  sha256?: string;
  installedAt: number;
}

/** A skill found on disk. */
export interface Skill {
  /** Folder name: the key in the config and what `read_skill` takes. */
  key: string;
  /** Front matter name (the key when absent). */
  name: string;
  description: string;
  homepage?: string;
  emoji?: string;
  always: boolean;
  requires: SkillRequirements;
  install: SkillInstallHint[];
  baseDir: string;
  filePath: string;
  installed?: InstallRecord;
}

/** The result of checking a skill's requirements here. */
export interface SkillCheck {
  /** Requirements met (enabled or not). */
  satisfied: boolean;
  missing: SkillRequirements;
}

/** One skill in `skills.status` (OpenClaw's fields). */
export interface SkillStatusEntry {
  name: string;
  description: string;
  source: string;
  bundled: boolean;
  filePath: string;
  baseDir: string;
  skillKey: string;
  emoji?: string;
  homepage?: string;
  always: boolean;
  disabled: boolean;
  enabled: boolean;
  blockedByAllowlist: boolean;
  eligible: boolean;
  modelVisible: boolean;
  requirements: SkillRequirements;
  missing: SkillRequirements;
  configChecks: { path: string; satisfied: boolean }[];
  install: SkillInstallHint[];
  installSource?: InstallRecord;
}

/** Result of `skills.status`. */
export interface SkillsStatus {
  workspaceDir: string;
  managedSkillsDir: string;
  agentId: string;
  skills: SkillStatusEntry[];
}

/** What to install. Exactly one of `path` and `url`; `url` needs `sha256`. */
export interface InstallRequest {
  /** Folder name; default the front matter's `name`. */
  name?: string;
  path?: string;
  url?: string;
  sha256?: string;
  /** Replace an installed skill of the same name. */
  force?: boolean;
  /** Download timeout. Default 60 s. */
  timeoutMs?: number;
}

/** Result of {@link Skills.install}. */
export interface InstallResult {
  ok: true;
  message: string;
  skillKey: string;
  name: string;
  targetDir: string;
  enabled: boolean;
  source: InstallRecord;
}

/** What `skills.update` changes. */
export interface UpdateRequest {
  skillKey: string;
  enabled?: boolean;
  /** Re-install from the recorded URL (or `url`) pinned by this sha256. */
  sha256?: string;
  /** A new archive URL (needs `sha256`). */
  url?: string;
  /** Re-install from the recorded source (a local folder is copied again). */
  reinstall?: boolean;
  timeoutMs?: number;
}

/** Result of {@link Skills.update}. */
export interface UpdateResult {
  ok: true;
  skillKey: string;
  config: { enabled?: boolean };
  reinstalled?: InstallResult;
}

/** Options of {@link Skills}. */
export interface SkillsOptions {
  stateDir: string;
  config: ConfigFile;
  log: Logger;
  /** Reads an environment variable (default `Deno.env.get`, unset when not permitted). */
  env?: (name: string) => string | undefined;
  /** Whether http:// archive URLs on loopback are allowed. Default: the test-only env var. */
  allowHttpLoopback?: () => boolean;
}

/**
 * The skills of one gateway.
 *
 * @example
 * ```ts
 * const skills = new Skills({ stateDir: "/tmp/gw", config, log });
 * console.log(await skills.prompt());
 * ```
 */
export class Skills {
  readonly #o: SkillsOptions;
  readonly #bins = new Map<string, { found: boolean; at: number }>();
  #scan: { at: number; skills: Promise<Skill[]> } | undefined;
  #queue: Promise<unknown> = Promise.resolve();

  /** Create the skills of `stateDir`. */
  constructor(options: SkillsOptions) {
    this.#o = options;
  }

  /** `<stateDir>/skills`. */
  get dir(): string {
    return `${this.#o.stateDir}/skills`;
  }

  /** Every skill on disk, by key. */
  list(): Promise<Skill[]> {
    const now = Date.now();
    if (!this.#scan || now - this.#scan.at > SCAN_CACHE_MS) {
      const skills = this.#load();
      skills.catch(() => {});
      this.#scan = { at: now, skills };
    }
    return this.#scan.skills;
  }

  /** Forget the cached scan (after an install). */
  invalidate(): void {
    this.#scan = undefined;
  }

  /** Whether the config enables skill `key`. */
  enabled(key: string): boolean {
    return this.#o.config.config.skills.entries[key]?.enabled === true;
  }

  /** Check a skill's requirements here. */
  async check(skill: Skill): Promise<SkillCheck> {
    const r = skill.requires;
    const missing: SkillRequirements = { bins: [], anyBins: [], env: [], config: [], os: [] };
    for (const b of r.bins) if (!await this.#hasBin(b)) missing.bins.push(b);
    if (r.anyBins.length) {
      let any = false;
      for (const b of r.anyBins) if (await this.#hasBin(b)) any = true;
      if (!any) missing.anyBins.push(...r.anyBins);
    }
    for (const e of r.env) if (!this.#hasEnv(e)) missing.env.push(e);
    for (const c of r.config) if (!truthyAt(this.#o.config.config, c)) missing.config.push(c);
    const os = Deno.build.os === "windows" ? "win32" : Deno.build.os;
    if (r.os.length && !r.os.includes(os)) missing.os.push(...r.os);
    const satisfied = !Object.values(missing).some((l) => l.length > 0);
    return { satisfied, missing };
  }

  /** `skills.status`: every skill, enabled or not, with what it misses here. */
  async status(agentId: string, workspaceDir: string): Promise<SkillsStatus> {
    const out: SkillStatusEntry[] = [];
    for (const s of await this.list()) {
      const c = await this.check(s);
      const enabled = this.enabled(s.key);
      const e: SkillStatusEntry = {
        name: s.name,
        description: s.description,
        source: "gw-managed",
        bundled: false,
        filePath: s.filePath,
        baseDir: s.baseDir,
        skillKey: s.key,
        always: s.always,
        disabled: !enabled,
        enabled,
        blockedByAllowlist: false,
        eligible: enabled && c.satisfied,
        modelVisible: enabled && c.satisfied,
        requirements: structuredClone(s.requires),
        missing: c.missing,
        configChecks: s.requires.config.map((path) => ({
          path,
          satisfied: !c.missing.config.includes(path),
        })),
        install: s.install,
      };
      if (s.emoji !== undefined) e.emoji = s.emoji;
      if (s.homepage !== undefined) e.homepage = s.homepage;
      if (s.installed) e.installSource = s.installed;
      out.push(e);
    }
    return { workspaceDir, managedSkillsDir: this.dir, agentId, skills: out };
  }

  /** `skills.bins`: every binary a skill names (required, any-of, install hints), sorted. */
  async bins(): Promise<string[]> {
    const set = new Set<string>();
    for (const s of await this.list()) {
      for (const b of [...s.requires.bins, ...s.requires.anyBins]) set.add(b);
      for (const h of s.install) for (const b of h.bins ?? []) set.add(b);
    }
    return [...set].sort();
  }

  /** The skills offered to the agent: enabled and eligible. */
  async available(): Promise<Skill[]> {
    const out: Skill[] = [];
    for (const s of await this.list()) {
      if (this.enabled(s.key) && (await this.check(s)).satisfied) out.push(s);
    }
    return out;
  }

  /** The system prompt's skills section, or undefined when no skill is available. */
  async prompt(): Promise<string | undefined> {
    const skills = (await this.available()).slice(0, MAX_SKILLS_IN_PROMPT);
    if (!skills.length) return undefined;
    const lines = [
      "## Skills",
      "Skills are instructions for particular tasks. Scan <available_skills>: when one clearly matches the task, read it first with the read_skill tool (give its name) and follow it. If several match, read the most specific; if none matches, read none. Read at most one up front. When a skill names a relative path, it is relative to the folder of its SKILL.md.",
      "",
      "<available_skills>",
    ];
    for (const s of skills) {
      lines.push("  <skill>");
      lines.push(`    <name>${xml(s.key)}</name>`);
      if (s.description) {
        lines.push(`    <description>${xml(s.description.slice(0, 1024))}</description>`);
      }
      lines.push(`    <location>${xml(s.filePath)}</location>`);
      lines.push("  </skill>");
    }
    lines.push("</available_skills>");
    return lines.join("\n");
  }

  /**
   * What `read_skill` returns: the instructions of an enabled, eligible skill
   * (SKILL.md without its front matter), or another file of its folder.
   */
  async read(name: string, file?: string): Promise<string> {
    const all = await this.list();
    const s = all.find((x) => x.key === name) ?? all.find((x) => x.name === name);
    if (!s) throw new Error(`unknown skill: ${name}`);
    if (!this.enabled(s.key)) throw new Error(`skill ${s.key} is not enabled`);
    const c = await this.check(s);
    if (!c.satisfied) {
      throw new Error(
        `skill ${s.key} is not available here: missing ${describeMissing(c.missing)}`,
      );
    }
    if (file === undefined || file === "SKILL.md") {
      const manifest = parseSkillFile(await readCapped(s.filePath));
      return `Skill ${s.key} (folder: ${s.baseDir})\n\n${manifest.body}`;
    }
    if (!safeRelativePath(file)) throw new Error(`file: ${file} is not a path inside the skill`);
    const base = await Deno.realPath(s.baseDir);
    let real: string;
    try {
      real = await Deno.realPath(`${s.baseDir}/${file}`);
    } catch {
      throw new Error(`skill ${s.key} has no file ${file}`);
    }
    if (!real.startsWith(`${base}/`)) throw new Error(`file: ${file} is not inside the skill`);
    return await readCapped(real);
  }

  /** The `read_skill` tool for the agent. */
  tool(): Tool {
    return {
      name: "read_skill",
      description:
        "Read a skill's instructions (listed under <available_skills> in the system prompt) by name. Optionally `file`: another file of the skill's folder, relative to it.",
      inputSchema: {
        type: "object",
        properties: {
          name: { type: "string", description: "The skill's name" },
          file: { type: "string", description: "A file in the skill's folder (default SKILL.md)" },
        },
        required: ["name"],
        additionalProperties: false,
      },
      run: async (input) => {
        const name = input.name;
        const file = input.file;
        if (typeof name !== "string" || !name) {
          return { text: "name: expected a skill name", isError: true };
        }
        if (file !== undefined && typeof file !== "string") {
          return { text: "file: expected a relative path", isError: true };
        }
        return { text: await this.read(name, file) };
      },
    };
  }

  /** Install a skill (disabled until enabled). Throws {@link SkillInstallError}. */
  install(req: InstallRequest): Promise<InstallResult> {
    return this.#serial(() => this.#install(req, false));
  }

  /** Enable or disable a skill, or re-install it from its recorded source. */
  update(req: UpdateRequest): Promise<UpdateResult> {
    return this.#serial(async () => {
      const skill = (await this.#load()).find((s) => s.key === req.skillKey);
      if (!skill) {
        throw new SkillInstallError("SKILL_NOT_FOUND", `unknown skill: ${req.skillKey}`);
      }
      const out: UpdateResult = { ok: true, skillKey: skill.key, config: {} };
      if (req.sha256 !== undefined || req.url !== undefined || req.reinstall === true) {
        const rec = skill.installed;
        const url = req.url ?? (rec?.kind === "url" ? rec.url : undefined);
        const again: InstallRequest = { name: skill.key, force: true };
        if (req.timeoutMs !== undefined) again.timeoutMs = req.timeoutMs;
        if (url !== undefined) {
          if (req.sha256 === undefined) {
            throw new SkillInstallError(
              "SKILL_SHA256_REQUIRED",
              "sha256: give the sha256 of the archive to install (each download is pinned)",
            );
          }
          again.url = url;
          again.sha256 = req.sha256;
        } else if (rec?.kind === "path" && rec.path) {
          if (req.sha256 !== undefined) {
            throw new SkillInstallError(
              "SKILL_SOURCE_INVALID",
              "sha256: this skill was copied from a local folder; give url with sha256 to switch to an archive",
            );
          }
          again.path = rec.path;
        } else {
          throw new SkillInstallError(
            "SKILL_SOURCE_INVALID",
            `skill ${skill.key} has no recorded source; install it again with skills.install`,
          );
        }
        out.reinstalled = await this.#install(again, true);
      }
      if (req.enabled !== undefined) await this.#setEnabled(skill.key, req.enabled);
      const enabled = this.#o.config.config.skills.entries[skill.key]?.enabled;
      if (enabled !== undefined) out.config.enabled = enabled;
      return out;
    });
  }

  // ------------------------------------------------------------------ internals

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => {});
    return run;
  }

  async #load(): Promise<Skill[]> {
    const out: Skill[] = [];
    let entries: Deno.DirEntry[];
    try {
      entries = await Array.fromAsync(Deno.readDir(this.dir));
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return [];
      throw e;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      if (!e.isDirectory || e.name.startsWith(".") || !SKILL_NAME.test(e.name)) continue;
      const baseDir = `${this.dir}/${e.name}`;
      const filePath = `${baseDir}/SKILL.md`;
      let text: string;
      try {
        const st = await Deno.lstat(filePath);
        if (!st.isFile) continue;
        text = await readCapped(filePath);
      } catch {
        continue;
      }
      const m = parseSkillFile(text);
      const skill: Skill = {
        key: e.name,
        name: m.name ?? e.name,
        description: m.description ?? "",
        always: m.always,
        requires: m.requires,
        install: m.install,
        baseDir,
        filePath,
      };
      if (m.homepage !== undefined) skill.homepage = m.homepage;
      if (m.emoji !== undefined) skill.emoji = m.emoji;
      const rec = await readRecord(`${baseDir}/${INSTALL_RECORD}`);
      if (rec) skill.installed = rec;
      out.push(skill);
    }
    return out;
  }

  async #hasBin(bin: string): Promise<boolean> {
    if (!/^[A-Za-z0-9._+-]{1,128}$/.test(bin)) return false;
    const now = Date.now();
    const hit = this.#bins.get(bin);
    if (hit && now - hit.at < BIN_CACHE_MS) return hit.found;
    let found = false;
    try {
      found = (await resolveBinary(bin, { path: pathEnv(), cwd: "/" })) !== null;
    } catch {
      found = false;
    }
    this.#bins.set(bin, { found, at: now });
    return found;
  }

  #hasEnv(name: string): boolean {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) return false;
    const get = this.#o.env ?? ((n: string) => {
      try {
        return Deno.env.get(n);
      } catch {
        return undefined; // not permitted: as if unset
      }
    });
    const v = get(name);
    return v !== undefined && v !== "";
  }

  async #install(req: InstallRequest, keepEnabled: boolean): Promise<InstallResult> {
    const allowHttp = (this.#o.allowHttpLoopback ?? httpLoopbackAllowed)();
    if (req.name !== undefined && !SKILL_NAME.test(req.name)) {
      throw new SkillInstallError(
        "SKILL_NAME_INVALID",
        "name: expected letters, digits, '.', '_' or '-' (at most 64, not starting with '.', '_' or '-')",
      );
    }
    // An archive is downloaded and checked before anything is written.
    let archive: Uint8Array | undefined;
    let record: InstallRecord;
    if (req.url !== undefined) {
      if (!req.sha256) {
        throw new SkillInstallError("SKILL_SHA256_REQUIRED", "sha256: required with url");
      }
      const url = checkArchiveUrl(req.url, allowHttp);
      archive = await downloadArchive(url, req.sha256, {
        timeoutMs: req.timeoutMs ?? 60_000,
        allowHttpLoopback: allowHttp,
      });
      await checkTarGz(archive);
      record = {
        kind: "url",
        url: url.href,
        sha256: req.sha256.toLowerCase(),
        installedAt: Date.now(),
      };
    } else if (req.path !== undefined) {
      let real: string;
      try {
        real = await Deno.realPath(req.path);
      } catch {
        throw new SkillInstallError("SKILL_SOURCE_NOT_FOUND", `path: ${req.path} does not exist`);
      }
      await Deno.mkdir(this.dir, { recursive: true, mode: 0o700 });
      const skillsReal = await Deno.realPath(this.dir);
      if (real === skillsReal || real.startsWith(`${skillsReal}/`)) {
        throw new SkillInstallError(
          "SKILL_SOURCE_INVALID",
          "path: that folder is inside the skills folder already",
        );
      }
      record = { kind: "path", path: real, installedAt: Date.now() };
    } else {
      throw new SkillInstallError("SKILL_SOURCE_INVALID", "give path or url");
    }

    await Deno.mkdir(this.dir, { recursive: true, mode: 0o700 });
    const tmp = `${this.dir}/.staging-${crypto.randomUUID()}`;
    await Deno.mkdir(tmp, { mode: 0o700 });
    try {
      const content = `${tmp}/content`;
      await Deno.mkdir(content, { mode: 0o700 });
      if (archive) {
        const file = `${tmp}/archive.tar.gz`;
        await Deno.writeFile(file, archive, { mode: 0o600 });
        await extractTarGz(file, content);
      } else {
        await copySkillFolder(record.path!, content);
      }
      await checkTree(content);
      const root = await skillRoot(content);
      const manifest = parseSkillFile(await readCapped(`${root}/SKILL.md`));
      const key = req.name ?? manifest.name;
      if (key === undefined || !SKILL_NAME.test(key)) {
        throw new SkillInstallError(
          "SKILL_NAME_INVALID",
          key === undefined
            ? "name: SKILL.md has no name; give name"
            : `name: ${JSON.stringify(key)} from SKILL.md is not a usable folder name; give name`,
        );
      }
      await Deno.writeTextFile(`${root}/${INSTALL_RECORD}`, JSON.stringify(record, null, 2) + "\n");
      const target = `${this.dir}/${key}`;
      const exists = await Deno.lstat(target).then(() => true, () => false);
      if (exists && !req.force) {
        throw new SkillInstallError(
          "SKILL_EXISTS",
          `skill ${key} is installed already; give force: true to replace it`,
        );
      }
      // Swap in: the old folder moves aside first, so the name always holds a whole skill.
      if (exists) await Deno.rename(target, `${tmp}/old`);
      try {
        await Deno.rename(root, target);
      } catch (e) {
        if (exists) await Deno.rename(`${tmp}/old`, target).catch(() => {});
        throw e;
      }
      this.invalidate();
      if (exists && !keepEnabled && this.enabled(key)) await this.#setEnabled(key, false);
      const enabled = this.enabled(key);
      this.#o.log.info("skill installed", { skill: key, source: record.kind, enabled });
      return {
        ok: true,
        message: enabled
          ? `Installed ${key}`
          : `Installed ${key}; it is off until enabled (skills.update {skillKey: "${key}", enabled: true})`,
        skillKey: key,
        name: manifest.name ?? key,
        targetDir: target,
        enabled,
        source: record,
      };
    } finally {
      await Deno.remove(tmp, { recursive: true }).catch(() => {});
    }
  }

  async #setEnabled(key: string, enabled: boolean): Promise<void> {
    const file = this.#o.config;
    for (let attempt = 0;; attempt++) {
      const raw = await Deno.readTextFile(file.path).catch(() => null);
      const hash = raw === null ? undefined : await sha256Hex(raw);
      try {
        await file.write(
          (cur) => mergePatch(cur, { skills: { entries: { [key]: { enabled } } } }),
          hash,
        );
        return;
      } catch (e) {
        const code = (e as { details?: { code?: string } }).details?.code;
        if (code !== "CONFIG_CONFLICT" || attempt >= 2) throw e;
      }
    }
  }
}

/** Where SKILL.md is in an unpacked skill: at the top, or in its only folder. */
async function skillRoot(content: string): Promise<string> {
  const has = (dir: string) => Deno.lstat(`${dir}/SKILL.md`).then((s) => s.isFile, () => false);
  if (await has(content)) return content;
  const entries = await Array.fromAsync(Deno.readDir(content));
  if (entries.length === 1 && entries[0]!.isDirectory) {
    const inner = `${content}/${entries[0]!.name}`;
    if (await has(inner)) return inner;
  }
  throw new SkillInstallError("SKILL_ARCHIVE_REFUSED", "no SKILL.md at the top of the skill");
}

async function readCapped(path: string): Promise<string> {
  const st = await Deno.stat(path);
  if (!st.isFile) throw new Error(`${path} is not a file`);
  if (st.size > MAX_SKILL_FILE_BYTES) {
    throw new Error(`${path} is larger than ${MAX_SKILL_FILE_BYTES} bytes`);
  }
  return await Deno.readTextFile(path);
}

async function readRecord(path: string): Promise<InstallRecord | undefined> {
  try {
    const v = JSON.parse(await Deno.readTextFile(path));
    if (v && (v.kind === "path" || v.kind === "url") && typeof v.installedAt === "number") {
      const r: InstallRecord = { kind: v.kind, installedAt: v.installedAt };
      if (typeof v.path === "string") r.path = v.path;
      if (typeof v.url === "string") r.url = v.url;
      if (typeof v.sha256 === "string") r.sha256 = v.sha256;
      return r;
    }
  } catch { /* none or unreadable */ }
  return undefined;
}

function truthyAt(obj: unknown, path: string): boolean {
  let cur: unknown = obj;
  for (const k of path.split(".")) {
    if (typeof cur !== "object" || cur === null || !Object.hasOwn(cur, k)) return false;
    cur = (cur as Record<string, unknown>)[k];
  }
  return Boolean(cur);
}

function describeMissing(m: SkillRequirements): string {
  const parts: string[] = [];
  if (m.bins.length) parts.push(`binaries ${m.bins.join(", ")}`);
  if (m.anyBins.length) parts.push(`one of the binaries ${m.anyBins.join(", ")}`);
  if (m.env.length) parts.push(`environment variables ${m.env.join(", ")}`);
  if (m.config.length) parts.push(`config ${m.config.join(", ")}`);
  if (m.os.length) parts.push(`platform ${m.os.join(" or ")}`);
  return parts.join("; ");
}

function xml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(
    /"/g,
    "&quot;",
  );
}
