/**
 * Command analysis for exec approvals (REFERENCE 1.11; SECURITY GHSA-pcqg,
 * GHSA-9r3v): parse a command without interpreting anything a shell would
 * expand, resolve a binary to the real file that would run, match allowlist
 * globs, render a command for a person to approve, and pin an approved run.
 *
 * Everything here is pure except {@linkcode resolveBinary}, which reads the
 * file system (read permission only).
 *
 * @module
 */

/** Why {@linkcode parseCommand} refused to interpret a command. */
export type RefusalReason =
  | "redirection"
  | "substitution"
  | "backticks"
  | "background"
  | "subshell"
  | "glob"
  | "heredoc"
  | "unterminated-quote"
  | "empty"
  | "variable";

/** A refusal: the reason and a sentence saying what was found and where. */
export interface Refusal {
  /** The category of shell feature that was found. */
  reason: RefusalReason;
  /** What was found, e.g. ``redirection `>` at offset 7``. */
  detail: string;
}

/** The operators that may join segments of a chain. */
export type ChainOperator = "&&" | "||" | ";" | "|";

/** One simple command of a chain. */
export interface CommandSegment {
  /** The words after quote removal; `argv[0]` names the program. */
  argv: string[];
}

/** The result of {@linkcode parseCommand}. */
export interface ParsedCommand {
  /** The simple commands, in order; empty when refused. */
  segments: CommandSegment[];
  /** `operators[i]` joins `segments[i]` and `segments[i + 1]`; empty when refused. */
  operators: ChainOperator[];
  /** Present when the command uses a shell feature that is not interpreted. */
  refused?: Refusal;
}

/** Words that start a compound command in sh or bash; never run as a program. */
const _KEYWORDS = new Set([
  "!",
  "{",
  "}",
  "if",
  "then",
  "else",
  "elif",
  "fi",
  "case",
  "esac",
  "for",
  "select",
  "while",
  "until",
  "do",
  "done",
  "function",
  "time",
  "coproc",
  "[[",
  "]]",
]);

class _Refused extends Error {
  constructor(readonly refusal: Refusal) {
    super(refusal.detail);
  }
}

function _refuse(reason: RefusalReason, detail: string): never {
  throw new _Refused({ reason, detail });
}

/** A character that ends an unquoted word. */
function _isBlank(c: string): boolean {
  return c === " " || c === "\t";
}

/**
 * Refuse a `$` that starts an expansion. A `$` at the end, before a blank or
 * an operator, or (inside double quotes) before the closing quote is literal;
 * anything else is refused rather than guessed at.
 */
function _checkDollar(next: string | undefined, at: number, inDouble: boolean): void {
  if (next === undefined || _isBlank(next) || ";|&\n".includes(next)) return;
  if (inDouble && next === '"') return;
  if (next === "(") _refuse("substitution", `command substitution \`$(\` at offset ${at}`);
  if (next === "[") _refuse("substitution", `arithmetic expansion \`$[\` at offset ${at}`);
  if (next === "{") _refuse("variable", `parameter expansion \`\${\` at offset ${at}`);
  if (next === "'" || next === '"') {
    _refuse("variable", `ANSI-C or locale quoting \`$${next}\` at offset ${at}`);
  }
  _refuse("variable", `parameter expansion \`$${next}\` at offset ${at}`);
}

function _parseText(text: string): { segments: CommandSegment[]; operators: ChainOperator[] } {
  const segments: CommandSegment[] = [];
  const operators: ChainOperator[] = [];
  let argv: string[] = [];
  let word = "";
  let inWord = false; // a word has started (even if empty, e.g. `""`)
  let wordQuoted = false; // some part of the word was quoted or escaped
  let plainPrefix = ""; // the unquoted characters before the first quoted part
  let wordStart = 0;
  // Brace expansion (`{a,b}`, `{1..3}`) in the unquoted parts of a word.
  let braceOpen = false;
  let braceList = false;

  const startWord = (at: number): void => {
    if (inWord) return;
    inWord = true;
    wordStart = at;
  };
  const add = (chars: string, quoted: boolean): void => {
    if (quoted) wordQuoted = true;
    else if (!wordQuoted) plainPrefix += chars;
    word += chars;
  };
  const endWord = (): void => {
    if (!inWord) return;
    if (argv.length === 0) {
      if (!wordQuoted && _KEYWORDS.has(word)) {
        _refuse("subshell", `compound command keyword \`${word}\` at offset ${wordStart}`);
      }
      if (/^[A-Za-z_][A-Za-z0-9_]*=/.test(plainPrefix)) {
        _refuse("variable", `environment assignment \`${word}\` at offset ${wordStart}`);
      }
    }
    argv.push(word);
    word = "";
    plainPrefix = "";
    inWord = false;
    wordQuoted = false;
    braceOpen = false;
    braceList = false;
  };
  /** End the current segment; false when it has no words. */
  const endSegment = (at: number): boolean => {
    endWord();
    if (argv.length === 0) return false;
    if (argv[0] === "") _refuse("empty", `empty program name before offset ${at}`);
    segments.push({ argv });
    argv = [];
    return true;
  };
  const operator = (op: ChainOperator, at: number): void => {
    if (!endSegment(at)) _refuse("empty", `empty command before \`${op}\` at offset ${at}`);
    operators.push(op);
  };

  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text[i]!;
    if (c === "\\") {
      const next = text[i + 1];
      if (next === undefined) _refuse("unterminated-quote", `trailing backslash at offset ${i}`);
      i += 2;
      if (next === "\n") continue; // line continuation
      startWord(i - 2);
      add(next, true);
      continue;
    }
    if (c === "'") {
      const close = text.indexOf("'", i + 1);
      if (close < 0) _refuse("unterminated-quote", `unterminated single quote at offset ${i}`);
      startWord(i);
      add(text.slice(i + 1, close), true);
      i = close + 1;
      continue;
    }
    if (c === '"') {
      startWord(i);
      add("", true);
      const open = i++;
      let closed = false;
      while (i < n) {
        const d = text[i]!;
        if (d === '"') {
          closed = true;
          i++;
          break;
        }
        if (d === "\\" && i + 1 < n) {
          const next = text[i + 1]!;
          i += 2;
          if (next === "\n") continue;
          add('"\\$`'.includes(next) ? next : `\\${next}`, true);
          continue;
        }
        if (d === "`") _refuse("backticks", `backtick substitution at offset ${i}`);
        if (d === "$") _checkDollar(text[i + 1], i, true);
        add(d, true);
        i++;
      }
      if (!closed) _refuse("unterminated-quote", `unterminated double quote at offset ${open}`);
      continue;
    }
    if (_isBlank(c)) {
      endWord();
      i++;
      continue;
    }
    if (c === "#" && !inWord) {
      // A comment runs to the end of the line, as in sh.
      const nl = text.indexOf("\n", i);
      i = nl < 0 ? n : nl;
      continue;
    }
    if (c === "`") _refuse("backticks", `backtick substitution at offset ${i}`);
    if (c === "$") _checkDollar(text[i + 1], i, false);
    if (c === "<") {
      if (text[i + 1] === "<") {
        _refuse("heredoc", `here-document \`${_opText(text, i)}\` at offset ${i}`);
      }
      _refuse("redirection", `redirection \`${_opText(text, i)}\` at offset ${i}`);
    }
    if (c === ">") {
      const fd = inWord && !wordQuoted && /^\d+$/.test(word) ? word : "";
      _refuse("redirection", `redirection \`${fd}${_opText(text, i)}\` at offset ${i - fd.length}`);
    }
    if (c === "(" || c === ")") _refuse("subshell", `subshell \`${c}\` at offset ${i}`);
    if (c === "&") {
      if (text[i + 1] === "&") {
        operator("&&", i);
        i += 2;
        continue;
      }
      if (text[i + 1] === ">") {
        _refuse("redirection", `redirection \`${_opText(text, i)}\` at offset ${i}`);
      }
      _refuse("background", `background \`&\` at offset ${i}`);
    }
    if (c === "|") {
      if (text[i + 1] === "|") {
        operator("||", i);
        i += 2;
        continue;
      }
      if (text[i + 1] === "&") _refuse("redirection", `stderr pipe \`|&\` at offset ${i}`);
      operator("|", i);
      i++;
      continue;
    }
    if (c === ";") {
      operator(";", i);
      i++;
      continue;
    }
    if (c === "\n") {
      // Blank lines and a newline after `&&`, `||` or `|` continue the command.
      if (endSegment(i)) operators.push(";");
      i++;
      continue;
    }
    if (c === "*" || c === "?" || c === "[") {
      _refuse("glob", `unquoted glob character \`${c}\` at offset ${i}`);
    }
    if (c === "~" && (!inWord || /[=:]$/.test(word))) {
      _refuse("variable", `tilde expansion \`~\` at offset ${i}`);
    }
    if (c === "{") braceOpen = true;
    if (braceOpen && (c === "," || (c === "." && text[i + 1] === "."))) braceList = true;
    if (c === "}" && braceOpen && braceList) {
      _refuse("glob", `brace expansion ending at offset ${i}`);
    }
    startWord(i);
    add(c, false);
    i++;
  }
  if (!endSegment(n)) {
    const last = operators.at(-1);
    if (last === undefined) _refuse("empty", "empty command");
    if (last !== ";") _refuse("empty", `empty command after \`${last}\` at end of input`);
    operators.pop(); // a trailing `;` or newline ends the last command
  }
  return { segments, operators };
}

/** The run of redirection characters starting at `i`, for messages. */
function _opText(text: string, i: number): string {
  const m = /^[<>&|-]+/.exec(text.slice(i, i + 4));
  return m ? m[0] : text[i]!;
}

/**
 * Parse a command for approval analysis.
 *
 * A string is tokenized like POSIX sh: single quotes are literal, double quotes
 * honour `\` before `"`, `\`, `$` and `` ` ``, a backslash outside quotes escapes
 * the next character, `#` at the start of a word begins a comment, and a newline
 * separates commands like `;`. The command is split on `&&`, `||`, `;` and `|`.
 * Shell features that would make the executed argv differ from the text are
 * refused, never interpreted: redirections, `$(…)`, backticks, `&`, subshells
 * and compound-command keywords, heredocs, unquoted `$VAR`/`${…}`/`~`
 * expansions, `$VAR` and `$(` inside double quotes (sh expands those too),
 * `NAME=value` prefixes, unquoted globs `*?[` and brace expansion. Quoted or
 * escaped characters are literal. A refused result has no segments.
 *
 * An argv array is one segment and never refused (no shell), except when it is
 * empty or its program name is empty.
 *
 * @example
 * ```ts
 * parseCommand("git status && ls -la 'my dir'");
 * // { segments: [{argv: ["git", "status"]}, {argv: ["ls", "-la", "my dir"]}], operators: ["&&"] }
 * parseCommand("cat /etc/passwd > out").refused?.reason; // "redirection"
 * ```
 */
export function parseCommand(input: string | readonly string[]): ParsedCommand {
  if (typeof input !== "string") {
    if (input.length === 0) {
      return { segments: [], operators: [], refused: { reason: "empty", detail: "empty argv" } };
    }
    if (input[0] === "") {
      return {
        segments: [],
        operators: [],
        refused: { reason: "empty", detail: "empty program name in argv[0]" },
      };
    }
    return { segments: [{ argv: [...input] }], operators: [] };
  }
  try {
    return _parseText(input);
  } catch (e) {
    if (e instanceof _Refused) return { segments: [], operators: [], refused: e.refusal };
    throw e;
  }
}

/** Options for {@linkcode resolveBinary}. */
export interface ResolveOptions {
  /** The `PATH` value to search for a bare name; `:`-separated (`;` on Windows). */
  path: string;
  /** The absolute working directory a name containing `/` is resolved against. */
  cwd: string;
}

function _isAbsolute(p: string): boolean {
  if (p.startsWith("/")) return true;
  return Deno.build.os === "windows" && /^(?:[A-Za-z]:[\\/]|\\\\)/.test(p);
}

function _join(dir: string, name: string): string {
  return dir.endsWith("/") || dir.endsWith("\\") ? dir + name : `${dir}/${name}`;
}

async function _executableRealPath(candidate: string): Promise<string | null> {
  try {
    const info = await Deno.stat(candidate); // follows symlinks
    if (!info.isFile) return null;
    if (info.mode === null) {
      if (Deno.build.os !== "windows") return null;
    } else if ((info.mode & 0o111) === 0) {
      return null;
    }
    return await Deno.realPath(candidate);
  } catch (e) {
    // Missing Deno read permission is a configuration error, not "not found".
    if (e instanceof Deno.errors.NotCapable) throw e;
    return null;
  }
}

/**
 * Resolve a program name to the real path of the file that would run.
 *
 * An absolute path is checked as is; a name containing `/` is resolved against
 * `opts.cwd`; a bare name is searched in the `opts.path` entries in order.
 * Empty and relative `PATH` entries are skipped (sh would search the working
 * directory; an approval must not depend on it). The file must exist, be a
 * regular file after following symlinks and have an execute bit; the result is
 * `Deno.realPath` of it so that approvals pin the real binary. Needs read
 * permission only.
 *
 * @example
 * ```ts
 * await resolveBinary("ls", { path: "/usr/bin:/bin", cwd: "/tmp" }); // "/usr/bin/ls"
 * ```
 * @throws {TypeError} when `opts.cwd` is not absolute.
 */
export async function resolveBinary(name: string, opts: ResolveOptions): Promise<string | null> {
  if (!_isAbsolute(opts.cwd)) {
    throw new TypeError(`opts.cwd: expected an absolute path, got ${JSON.stringify(opts.cwd)}`);
  }
  if (name === "" || name.includes("\0")) return null;
  if (_isAbsolute(name)) return await _executableRealPath(name);
  if (name.includes("/") || (Deno.build.os === "windows" && name.includes("\\"))) {
    return await _executableRealPath(_join(opts.cwd, name));
  }
  const sep = Deno.build.os === "windows" ? ";" : ":";
  for (const dir of opts.path.split(sep)) {
    if (dir === "" || !_isAbsolute(dir)) continue;
    const found = await _executableRealPath(_join(dir, name));
    if (found !== null) return found;
  }
  return null;
}

/** An allowlist entry as stored in the exec-approvals file. */
export interface AllowlistEntry {
  /** A glob over the resolved binary path (ASCII case-insensitive). */
  pattern: string;
  /** An optional glob over the arguments joined by one space (case-sensitive). */
  argPattern?: string;
}

const _REGEX_SYNTAX = /[\\^$.*+?()[\]{}|/]/g;

function _escapeRegex(s: string): string {
  return s.replace(_REGEX_SYNTAX, "\\$&");
}

/** ASCII-only lower-casing: no Unicode case folding (the Kelvin sign is not `k`). */
function _asciiLower(s: string): string {
  return s.replace(/[A-Z]/g, (c) => String.fromCharCode(c.charCodeAt(0) + 32));
}

/**
 * Compile a glob to an anchored regex. With `paths`, `*` and `?` stop at `/`,
 * `**` crosses segments and `**` followed by `/` also matches no directory.
 * Without it, `*` (and `**`) match any run of characters, `?` any one.
 */
function _globRegex(glob: string, paths: boolean): RegExp {
  let out = "";
  const cps = [...glob];
  for (let i = 0; i < cps.length; i++) {
    const c = cps[i]!;
    if (c === "*") {
      if (cps[i + 1] === "*") {
        while (cps[i + 1] === "*") i++;
        if (paths && cps[i + 1] === "/") {
          i++;
          out += "(?:.*/)?";
        } else {
          out += ".*";
        }
      } else {
        out += paths ? "[^/]*" : ".*";
      }
    } else if (c === "?") {
      out += paths ? "[^/]" : ".";
    } else {
      out += _escapeRegex(c);
    }
  }
  return new RegExp(`^${out}$`, "su");
}

/**
 * Whether a resolved binary and its arguments match an allowlist entry.
 *
 * `entry.pattern` is an anchored glob over the resolved path, ASCII
 * case-insensitive: `*` matches within one path segment, `**` across segments
 * (a `**` followed by a slash also matches no directory at all), `?` one character other than `/`. Every other
 * character is literal. Without `argPattern` any arguments match; with it, the
 * arguments joined by a single space must match it as an anchored,
 * case-sensitive glob where `*` matches any run of characters (spaces and `/`
 * included) and `?` any one character.
 *
 * @example
 * ```ts
 * matchesAllowlist("/usr/bin/git", ["status"], { pattern: "/USR/**", argPattern: "status*" }); // true
 * ```
 */
export function matchesAllowlist(
  resolvedPath: string,
  args: readonly string[],
  entry: AllowlistEntry,
): boolean {
  if (entry.pattern === "") return false;
  if (!_globRegex(_asciiLower(entry.pattern), true).test(_asciiLower(resolvedPath))) return false;
  if (entry.argPattern === undefined) return true;
  return _globRegex(entry.argPattern, false).test(args.join(" "));
}

/** Characters never shown raw to a person approving a command. */
const _HIDDEN =
  /[\p{Cc}\p{Cf}\p{Co}\p{Cn}\p{Cs}\p{Zl}\p{Zp}\p{Bidi_Control}\p{Default_Ignorable_Code_Point}\u{2800}\u{115F}\u{1160}\u{3164}\u{FFA0}]|(?! )\p{Zs}/u;

function _isHidden(cp: string): boolean {
  return _HIDDEN.test(cp);
}

function _hex(cp: string): string {
  return cp.codePointAt(0)!.toString(16).toUpperCase().padStart(4, "0");
}

/**
 * Escape hidden characters as `\u{XXXX}`. A run of literal backslashes that
 * would be followed by `u{` in the output is doubled, so a displayed `\u{…}`
 * always means an escaped character and never literal text.
 */
function _escapeHidden(s: string): { text: string; escaped: number } {
  const cps = [...s];
  let text = "";
  let escaped = 0;
  for (let i = 0; i < cps.length; i++) {
    const c = cps[i]!;
    if (c === "\\") {
      let j = i;
      while (cps[j] === "\\") j++;
      const run = j - i;
      const next = cps[j];
      const ambiguous = next !== undefined &&
        (_isHidden(next) || (next === "u" && cps[j + 1] === "{"));
      text += "\\".repeat(ambiguous ? run * 2 : run);
      i = j - 1;
      continue;
    }
    if (_isHidden(c)) {
      text += `\\u{${_hex(c)}}`;
      escaped++;
      continue;
    }
    text += c;
  }
  return { text, escaped };
}

/** Characters that make an argv element need quoting for display. */
const _NEEDS_QUOTE = /[\s'"\\$`!*?[\]{}()<>|&;#~]/u;

function _quoteArg(arg: string): string {
  if (arg === "") return "''";
  if (!_NEEDS_QUOTE.test(arg) && ![...arg].some(_isHidden)) return arg;
  return `'${arg.replaceAll("'", `'\\''`)}'`;
}

/** What {@linkcode displayCommand} returns. */
export interface DisplayedCommand {
  /** The NFKC-normalised command with hidden characters escaped as `\u{XXXX}`. */
  text: string;
  /** Whether NFKC normalisation changed the command: what runs differs from what is shown. */
  normalized: boolean;
  /** How many characters were escaped. */
  escapedChars: number;
}

/**
 * The text shown to a person approving a command (GHSA-pcqg, GHSA-9r3v).
 *
 * The command is NFKC-normalised (fullwidth `ｒｍ` shows as `rm`) and
 * `normalized` says whether that changed anything, so the prompt can warn that
 * the bytes that run are not the ones shown. Then every control (Cc), format
 * (Cf: zero-width, bidi controls, BOM, tags…), private-use, unassigned, lone
 * surrogate, line/paragraph separator, default-ignorable and non-ASCII space
 * character is shown as `\u{XXXX}`. Argv elements are joined by spaces and
 * single-quoted when they are empty or contain whitespace, quotes, shell
 * metacharacters or escaped characters.
 *
 * @example
 * ```ts
 * displayCommand(["ｒｍ", "-rf", "my dir"]);
 * // { text: "rm -rf 'my dir'", normalized: true, escapedChars: 0 }
 * displayCommand("echo a\u200Bb").text; // "echo a\\u{200B}b"
 * ```
 */
export function displayCommand(argvOrText: string | readonly string[]): DisplayedCommand {
  if (typeof argvOrText === "string") {
    const norm = argvOrText.normalize("NFKC");
    const { text, escaped } = _escapeHidden(norm);
    return { text, normalized: norm !== argvOrText, escapedChars: escaped };
  }
  let normalized = false;
  let escapedChars = 0;
  const parts = argvOrText.map((arg) => {
    const norm = arg.normalize("NFKC");
    if (norm !== arg) normalized = true;
    const { text, escaped } = _escapeHidden(_quoteArg(norm));
    escapedChars += escaped;
    return text;
  });
  return { text: parts.join(" "), normalized, escapedChars };
}

const _SCRIPTS = [
  "Latin",
  "Greek",
  "Cyrillic",
  "Armenian",
  "Hebrew",
  "Arabic",
  "Devanagari",
  "Thai",
  "Georgian",
  "Cherokee",
  "Hangul",
  "Hiragana",
  "Katakana",
  "Han",
].map((name) => ({ name, re: new RegExp(`^\\p{Script=${name}}$`, "u") }));

function _scriptOf(cp: string): string | null {
  if (!/^\p{L}$/u.test(cp)) return null; // digits, punctuation, marks: Common/Inherited
  for (const s of _SCRIPTS) if (s.re.test(cp)) return s.name;
  return "Other";
}

function _codes(cps: Iterable<string>): string {
  return [...new Set(cps)].map((c) => `U+${_hex(c)}`).join(" ");
}

/** The program names of a command, best effort (also for refused commands). */
function _programNames(argvOrText: string | readonly string[]): string[] {
  if (typeof argvOrText !== "string") return argvOrText.length > 0 ? [argvOrText[0]!] : [];
  const parsed = parseCommand(argvOrText);
  if (!parsed.refused) return parsed.segments.map((s) => s.argv[0]!);
  const first = argvOrText.trim().split(/[ \t\n;&|]+/u)[0];
  return first ? [first] : [];
}

/**
 * Reasons a command looks crafted to mislead an approver; empty when none.
 *
 * Each reason starts with a stable code followed by `:` and the code points:
 * `fullwidth:` (fullwidth forms NFKC turns into ASCII), `compatibility:` (other
 * characters or sequences NFKC changes), `invisible:` (format, zero-width,
 * default-ignorable, private-use, unassigned, non-ASCII space characters),
 * `bidi:` (bidirectional controls such as U+202E), `control:` (C0/C1 controls
 * other than tab and newline) and `mixed-script:` (a program name mixing
 * letters of several scripts, e.g. Cyrillic `р` with Latin `m`).
 *
 * @example
 * ```ts
 * suspicious("ｒｍ -rf /"); // ["fullwidth: U+FF52 U+FF4D become ASCII under NFKC"]
 * ```
 */
export function suspicious(argvOrText: string | readonly string[]): string[] {
  const all = typeof argvOrText === "string" ? [argvOrText] : [...argvOrText];
  const cps = all.flatMap((s) => [...s]);
  const reasons: string[] = [];
  const fullwidth = cps.filter((c) => /^[\uFF01-\uFF5E]$/u.test(c));
  if (fullwidth.length > 0) {
    reasons.push(`fullwidth: ${_codes(fullwidth)} become ASCII under NFKC`);
  }
  const compat = cps.filter((c) => !/^[\uFF01-\uFF5E]$/u.test(c) && c.normalize("NFKC") !== c);
  if (compat.length > 0) {
    reasons.push(`compatibility: ${_codes(compat)} change under NFKC`);
  } else if (fullwidth.length === 0 && all.some((s) => s.normalize("NFKC") !== s)) {
    reasons.push("compatibility: the text is not in NFKC form (combining sequences compose)");
  }
  const bidi = cps.filter((c) => /^\p{Bidi_Control}$/u.test(c));
  const control = cps.filter((c) => /^\p{Cc}$/u.test(c) && c !== "\t" && c !== "\n");
  const invisible = cps.filter((c) =>
    _isHidden(c) && !/^\p{Bidi_Control}$/u.test(c) && !/^\p{Cc}$/u.test(c)
  );
  if (invisible.length > 0) reasons.push(`invisible: ${_codes(invisible)}`);
  if (bidi.length > 0) reasons.push(`bidi: ${_codes(bidi)}`);
  if (control.length > 0) reasons.push(`control: ${_codes(control)}`);
  for (const name of _programNames(argvOrText)) {
    const scripts = new Set<string>();
    for (const c of name) {
      const s = _scriptOf(c);
      if (s) scripts.add(s);
    }
    if (scripts.size > 1) {
      reasons.push(
        `mixed-script: program name ${JSON.stringify(name)} mixes ${[...scripts].join(", ")}`,
      );
    }
  }
  return reasons;
}

/** A fully resolved run, as pinned by an approval. */
export interface Invocation {
  /** The resolved executable path. */
  binary: string;
  /** The arguments after the program name. */
  args: readonly string[];
  /** The working directory. */
  cwd: string;
  /** The complete environment of the run. */
  env: Readonly<Record<string, string>>;
}

function _sortedEnv(env: Readonly<Record<string, string>>): [string, string][] {
  return Object.entries(env).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Whether two invocations are exactly the same run: same binary, arguments,
 * working directory and environment (compared as sorted key/value pairs). No
 * normalisation of any kind: `ｒｍ` is not `rm`, `/a/../b` is not `/b`.
 *
 * @example
 * ```ts
 * sameInvocation(
 *   { binary: "/bin/ls", args: ["-l"], cwd: "/tmp", env: { A: "1", B: "2" } },
 *   { binary: "/bin/ls", args: ["-l"], cwd: "/tmp", env: { B: "2", A: "1" } },
 * ); // true
 * ```
 */
export function sameInvocation(a: Invocation, b: Invocation): boolean {
  if (a.binary !== b.binary || a.cwd !== b.cwd) return false;
  if (a.args.length !== b.args.length) return false;
  for (let i = 0; i < a.args.length; i++) if (a.args[i] !== b.args[i]) return false;
  const ea = _sortedEnv(a.env);
  const eb = _sortedEnv(b.env);
  if (ea.length !== eb.length) return false;
  for (let i = 0; i < ea.length; i++) {
    if (ea[i]![0] !== eb[i]![0] || ea[i]![1] !== eb[i]![1]) return false;
  }
  return true;
}
