/**
 * SKILL.md front matter: the block between the leading `---` lines.
 *
 * Skills are written for OpenClaw, whose front matter is YAML with an
 * OpenClaw manifest under `metadata` (usually a JSON5 object):
 *
 * ```md
 * ---
 * name: weather
 * description: "Current weather and forecasts."
 * metadata: { "openclaw": { "emoji": "🌤️", "requires": { "bins": ["curl"] } } }
 * ---
 * ```
 *
 * gw parses the subset such files use, without a YAML dependency: `key: value`
 * lines (plain, quoted, `|` and `>` block scalars, flow `[...]` / `{...}`
 * values in JSON5 style), nested block mappings and `- item` lists. The
 * manifest is read from `metadata.openclaw` (or the legacy `metadata.clawdbot`);
 * a top-level `requires` mapping is accepted too.
 *
 * @module
 */

/** What a skill needs before it is offered to the agent. */
export interface SkillRequirements {
  /** Binaries that must all be on PATH. */
  bins: string[];
  /** Binaries of which at least one must be on PATH. */
  anyBins: string[];
  /** Environment variables that must be set (names only). */
  env: string[];
  /** Config paths (dotted) that must be truthy. */
  config: string[];
  /** Platforms it runs on (`darwin`, `linux`, `win32`); empty: any. */
  os: string[];
}

/** An install hint of the manifest (shown, never run: gw runs no installers). */
export interface SkillInstallHint {
  id?: string;
  kind: string;
  label?: string;
  bins?: string[];
}

/** A parsed SKILL.md. */
export interface SkillManifest {
  name?: string;
  description?: string;
  homepage?: string;
  emoji?: string;
  /** The skill's key in the config (`metadata.openclaw.skillKey`). */
  skillKey?: string;
  always: boolean;
  requires: SkillRequirements;
  install: SkillInstallHint[];
  /** The Markdown after the front matter: the instructions. */
  body: string;
}

/** Split a SKILL.md into its front matter block (without the `---` lines) and body. */
export function splitFrontmatter(text: string): { block: string | undefined; body: string } {
  const t = text.replace(/^\uFEFF/, "").replace(/\r\n?/g, "\n");
  const open = /^---[^\S\n]*\n/.exec(t);
  if (!open) return { block: undefined, body: t };
  const rest = t.slice(open[0].length);
  const close = /(?:^|\n)---[^\S\n]*(?:\n|$)/.exec(rest);
  if (!close) return { block: undefined, body: t };
  return { block: rest.slice(0, close.index), body: rest.slice(close.index + close[0].length) };
}

/** Parse a SKILL.md's text. Unknown or malformed fields are ignored. */
export function parseSkillFile(text: string): SkillManifest {
  const { block, body } = splitFrontmatter(text);
  const fm = block === undefined ? {} : parseYamlSubset(block);
  const meta = asRecord(typeof fm.metadata === "string" ? tryJson5(fm.metadata) : fm.metadata);
  const manifest = asRecord(meta?.openclaw) ?? asRecord(meta?.clawdbot) ?? {};
  const requires = asRecord(manifest.requires) ?? asRecord(fm.requires) ?? {};
  const out: SkillManifest = {
    always: manifest.always === true,
    requires: {
      bins: stringList(requires.bins),
      anyBins: stringList(requires.anyBins),
      env: stringList(requires.env),
      config: stringList(requires.config),
      os: stringList(manifest.os ?? requires.os),
    },
    install: installHints(manifest.install),
    body: body.replace(/^\n+/, ""),
  };
  const str = (v: unknown) => (typeof v === "string" && v.trim() ? v.trim() : undefined);
  const name = str(fm.name);
  const description = str(fm.description);
  const homepage = str(fm.homepage) ?? str(manifest.homepage);
  const emoji = str(manifest.emoji);
  const skillKey = str(manifest.skillKey);
  if (name !== undefined) out.name = name;
  if (description !== undefined) out.description = description;
  if (homepage !== undefined) out.homepage = homepage;
  if (emoji !== undefined) out.emoji = emoji;
  if (skillKey !== undefined) out.skillKey = skillKey;
  return out;
}

function asRecord(v: unknown): Record<string, unknown> | undefined {
  return typeof v === "object" && v !== null && !Array.isArray(v)
    ? v as Record<string, unknown>
    : undefined;
}

/** A list of strings from an array or a comma-separated string (as OpenClaw reads them). */
function stringList(v: unknown): string[] {
  const items = Array.isArray(v) ? v : typeof v === "string" ? v.split(",") : [];
  const out: string[] = [];
  for (const i of items) {
    if (typeof i !== "string" && typeof i !== "number") continue;
    const s = String(i).trim();
    if (s && !out.includes(s)) out.push(s);
  }
  return out;
}

function installHints(v: unknown): SkillInstallHint[] {
  if (!Array.isArray(v)) return [];
  const out: SkillInstallHint[] = [];
  for (const raw of v) {
    const r = asRecord(raw);
    const kind = typeof r?.kind === "string" ? r.kind : typeof r?.type === "string" ? r.type : "";
    if (!r || !kind) continue;
    const hint: SkillInstallHint = { kind: kind.toLowerCase() };
    if (typeof r.id === "string") hint.id = r.id;
    if (typeof r.label === "string") hint.label = r.label;
    const bins = stringList(r.bins);
    if (bins.length) hint.bins = bins;
    out.push(hint);
  }
  return out;
}

// ------------------------------------------------------------------ the YAML subset

interface Line {
  indent: number;
  text: string;
}

/**
 * Parse a YAML block mapping of the subset described in the module doc.
 * Never throws: what it cannot read is left out.
 */
export function parseYamlSubset(block: string): Record<string, unknown> {
  const lines: Line[] = block.split("\n").map((raw) => {
    const text = raw.replace(/\t/g, "  ");
    return { indent: text.length - text.trimStart().length, text: text.trim() };
  });
  const [value] = parseNode(lines, 0, 0);
  return asRecord(value) ?? {};
}

/** Skip blank and comment lines. */
function skipBlank(lines: Line[], i: number): number {
  while (i < lines.length && (lines[i]!.text === "" || lines[i]!.text.startsWith("#"))) i++;
  return i;
}

/** The node starting at line `i` whose lines are indented at least `min`. */
function parseNode(lines: Line[], i: number, min: number): [unknown, number] {
  i = skipBlank(lines, i);
  const first = lines[i];
  if (!first || first.indent < min) return [undefined, i];
  if (first.text.startsWith("{") || first.text.startsWith("[")) {
    // A flow value spread over lines: take every line indented at least as much.
    const parts: string[] = [];
    while (i < lines.length && (lines[i]!.text === "" || lines[i]!.indent >= first.indent)) {
      parts.push(lines[i]!.text);
      i++;
    }
    return [tryJson5(parts.join("\n")), i];
  }
  if (first.text === "-" || first.text.startsWith("- ")) return parseList(lines, i, first.indent);
  return parseMap(lines, i, first.indent);
}

function parseList(lines: Line[], i: number, indent: number): [unknown[], number] {
  const out: unknown[] = [];
  for (;;) {
    i = skipBlank(lines, i);
    const l = lines[i];
    if (!l || l.indent !== indent || !(l.text === "-" || l.text.startsWith("- "))) break;
    const rest = l.text.slice(1).trim();
    i++;
    if (rest === "") {
      const [v, next] = parseNode(lines, i, indent + 1);
      out.push(v);
      i = next;
    } else if (/^[\w.-]+:(\s|$)/.test(rest)) {
      // `- key: value` starts a mapping whose other keys sit under the first one.
      const inner: Line[] = [{ indent: indent + 2, text: rest }];
      let j = i;
      while (j < lines.length && (lines[j]!.text === "" || lines[j]!.indent > indent)) {
        inner.push(lines[j]!);
        j++;
      }
      out.push(parseMap(inner, 0, indent + 2)[0]);
      i = j;
    } else out.push(scalar(rest));
  }
  return [out, i];
}

function parseMap(lines: Line[], i: number, indent: number): [Record<string, unknown>, number] {
  const out: Record<string, unknown> = {};
  for (;;) {
    i = skipBlank(lines, i);
    const l = lines[i];
    if (!l || l.indent !== indent) break;
    const m = /^("(?:[^"\\]|\\.)*"|'[^']*'|[^:]+?):(?:\s+(.*))?$/.exec(l.text);
    if (!m) {
      i++;
      continue;
    }
    const key = unquote(m[1]!.trim());
    const rest = (m[2] ?? "").trim();
    i++;
    let value: unknown;
    if (/^[|>][+-]?\d*$/.test(rest)) {
      const collected: string[] = [];
      let inner = -1;
      while (i < lines.length && (lines[i]!.text === "" || lines[i]!.indent > indent)) {
        const raw = lines[i]!;
        if (inner < 0 && raw.text !== "") inner = raw.indent;
        collected.push(raw.text === "" ? "" : " ".repeat(raw.indent - inner) + raw.text);
        i++;
      }
      while (collected.length && collected[collected.length - 1] === "") collected.pop();
      value = rest.startsWith("|") ? collected.join("\n") : foldLines(collected);
    } else if (rest === "" || rest.startsWith("#")) {
      const [v, next] = parseNode(lines, i, indent + 1);
      value = v;
      i = next;
    } else value = scalar(rest);
    if (key && !(key in out)) out[key] = value;
  }
  return [out, i];
}

/** `>` folding: lines join with spaces, blank lines become newlines. */
function foldLines(lines: string[]): string {
  let out = "";
  for (const l of lines) {
    if (l === "") out += "\n";
    else out += out === "" || out.endsWith("\n") ? l : ` ${l}`;
  }
  return out;
}

function unquote(s: string): string {
  if (s.length >= 2 && s.startsWith('"') && s.endsWith('"')) {
    try {
      return JSON.parse(s);
    } catch {
      return s.slice(1, -1);
    }
  }
  if (s.length >= 2 && s.startsWith("'") && s.endsWith("'")) {
    return s.slice(1, -1).replace(/''/g, "'");
  }
  return s;
}

function scalar(raw: string): unknown {
  const s = raw.trim();
  if (s.startsWith("{") || s.startsWith("[")) {
    const v = tryJson5(s);
    if (v !== undefined) return v;
    // A YAML flow sequence of plain words: [linux, darwin].
    const m = /^\[([^[\]{}]*)\]$/.exec(s);
    if (m) return m[1]!.split(",").map((x) => x.trim()).filter(Boolean).map(scalar);
    return s;
  }
  if (s.startsWith('"') || s.startsWith("'")) return unquote(s);
  const plain = s.replace(/\s+#.*$/, "");
  if (/^(true|yes|on)$/i.test(plain)) return true;
  if (/^(false|no|off)$/i.test(plain)) return false;
  if (/^(null|~)$/i.test(plain)) return null;
  if (/^-?\d+(\.\d+)?$/.test(plain)) return Number(plain);
  return plain;
}

// ------------------------------------------------------------------ JSON5 subset

/** Parse JSON5-style text (comments, trailing commas, bare or single-quoted keys); undefined on error. */
export function tryJson5(text: string): unknown {
  try {
    return parseJson5(text);
  } catch {
    return undefined;
  }
}

/** Parse JSON5-style text; throws SyntaxError. */
export function parseJson5(text: string): unknown {
  let i = 0;
  const fail = (what: string): never => {
    throw new SyntaxError(`${what} at ${i}`);
  };
  const ws = () => {
    for (;;) {
      const c = text[i];
      if (c === " " || c === "\n" || c === "\t" || c === "\r") i++;
      else if (c === "/" && text[i + 1] === "/") {
        while (i < text.length && text[i] !== "\n") i++;
      } else if (c === "/" && text[i + 1] === "*") {
        const end = text.indexOf("*/", i + 2);
        if (end < 0) fail("unterminated comment");
        i = end + 2;
      } else return;
    }
  };
  const str = (): string => {
    const q = text[i++]!;
    let out = "";
    while (i < text.length && text[i] !== q) {
      const c = text[i++]!;
      if (c !== "\\") {
        out += c;
        continue;
      }
      const e = text[i++];
      const map: Record<string, string> = {
        n: "\n",
        t: "\t",
        r: "\r",
        b: "\b",
        f: "\f",
        "0": "\0",
      };
      if (e === undefined) fail("unterminated string");
      else if (e === "u") {
        const hex = text.slice(i, i + 4);
        if (!/^[0-9a-f]{4}$/i.test(hex)) fail("bad \\u escape");
        out += String.fromCharCode(parseInt(hex, 16));
        i += 4;
      } else if (e === "\n") continue;
      else out += map[e] ?? e;
    }
    if (text[i] !== q) fail("unterminated string");
    i++;
    return out;
  };
  const value = (depth: number): unknown => {
    if (depth > 64) fail("too deeply nested");
    ws();
    const c = text[i];
    if (c === "{") {
      i++;
      const obj: Record<string, unknown> = {};
      for (;;) {
        ws();
        if (text[i] === "}") {
          i++;
          return obj;
        }
        let key: string;
        if (text[i] === '"' || text[i] === "'") key = str();
        else {
          const m = /^[A-Za-z_$][\w$-]*/.exec(text.slice(i));
          if (!m) return fail("expected a key");
          key = m[0];
          i += key.length;
        }
        ws();
        if (text[i++] !== ":") fail("expected ':'");
        const v = value(depth + 1);
        if (key !== "__proto__") obj[key] = v;
        ws();
        if (text[i] === ",") i++;
        else if (text[i] !== "}") fail("expected ',' or '}'");
      }
    }
    if (c === "[") {
      i++;
      const arr: unknown[] = [];
      for (;;) {
        ws();
        if (text[i] === "]") {
          i++;
          return arr;
        }
        arr.push(value(depth + 1));
        ws();
        if (text[i] === ",") i++;
        else if (text[i] !== "]") fail("expected ',' or ']'");
      }
    }
    if (c === '"' || c === "'") return str();
    const m =
      /^(?:true|false|null|[+-]?(?:Infinity|NaN|0x[0-9a-f]+|(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?))/i
        .exec(text.slice(i));
    if (!m) return fail("unexpected character");
    i += m[0].length;
    const t = m[0];
    if (t === "true") return true;
    if (t === "false") return false;
    if (t === "null") return null;
    return Number(t);
  };
  const v = value(0);
  ws();
  if (i < text.length) fail("unexpected trailing text");
  return v;
}
