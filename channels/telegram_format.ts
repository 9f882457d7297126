/**
 * Markdown, as LLMs write it, to Telegram's HTML parse mode, and splitting of long replies into
 * messages that each fit Telegram's limit.
 *
 * Rendering rules, briefly:
 * - Block level is line based: fenced code (``` or ~~~, unclosed runs to the end) becomes
 *   `<pre><code class="language-x">`; `#` headings become a bold line; consecutive `>` lines
 *   become one `<blockquote>` (nested quotes are flattened: Telegram cannot nest them); `-`/`*`/`+`
 *   bullets become `• `; numbered lists are kept; `---` becomes `———`; a table (a `|` row followed
 *   by a `|---|` row) becomes a `<pre>` block with its columns padded to equal width.
 * - Inline formatting follows CommonMark's delimiter rules (so `snake_case`, `2 * 3` and unmatched
 *   markers stay literal) and never spans lines: `**b**`/`__b__`, `*i*`/`_i_`, `~~s~~`, `||spoiler||`,
 *   `` `code` ``, `[text](url)` (only http(s), tg and mailto links; others render as `text (url)`)
 *   and `<https://autolinks>`.
 * - Every character of the input is escaped; the only tags are the ones generated here, and they are
 *   balanced and properly nested by construction.
 *
 * @module
 */

/** Telegram's cap on one message's text. */
export const TELEGRAM_TEXT_LIMIT = 4096;

/** The smallest limit `splitMarkdown` accepts: room for one escaped character in a blockquote. */
const _MIN_MARKDOWN_LIMIT = 40;

/**
 * Escape text for Telegram HTML: `&`, `<` and `>` become entities (quotes are left alone; use it
 * for text, not attribute values).
 *
 * @example
 * ```ts
 * escapeHtml("a < b && c"); // "a &lt; b &amp;&amp; c"
 * ```
 */
export function escapeHtml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function _escapeAttr(text: string): string {
  return escapeHtml(text).replace(/"/g, "&quot;");
}

// ---------------------------------------------------------------------------------------------
// Block level

interface _FenceOpen {
  indent: number;
  marker: string;
  lang: string;
}

function _fenceOpen(line: string): _FenceOpen | null {
  const m = /^( {0,3})(`{3,}|~{3,})(.*)$/.exec(line);
  if (!m) return null;
  const marker = m[2]!;
  const info = m[3]!;
  if (marker[0] === "`" && info.includes("`")) return null; // ```inline``` is a code span
  const lang = (info.trim().split(/\s+/)[0] ?? "").replace(/[^A-Za-z0-9_+-]/g, "").slice(0, 32);
  return { indent: m[1]!.length, marker, lang };
}

function _isFenceClose(line: string, open: _FenceOpen): boolean {
  const m = /^ {0,3}(`{3,}|~{3,})[ \t]*$/.exec(line);
  return m !== null && m[1]![0] === open.marker[0] && m[1]!.length >= open.marker.length;
}

/** Index just past the fenced block opening at `lines[start]`, or -1 if it opens none. */
function _fenceEnd(lines: string[], start: number): number {
  const open = _fenceOpen(lines[start]!);
  if (!open) return -1;
  for (let i = start + 1; i < lines.length; i++) {
    if (_isFenceClose(lines[i]!, open)) return i + 1;
  }
  return lines.length;
}

function _renderFence(lines: string[]): string {
  const open = _fenceOpen(lines[0]!)!;
  const last = lines.length > 1 && _isFenceClose(lines[lines.length - 1]!, open);
  const strip = new RegExp(`^ {0,${open.indent}}`);
  const body = lines.slice(1, last ? -1 : undefined).map((l) => l.replace(strip, "")).join("\n");
  if (body.trim() === "") return "";
  const code = escapeHtml(body);
  return open.lang
    ? `<pre><code class="language-${open.lang}">${code}</code></pre>`
    : `<pre>${code}</pre>`;
}

const _QUOTE = /^ {0,3}(?:> ?)+/;
const _TABLE_SEP = /^[\s|:-]*-[\s|:-]*$/;

function _isTableStart(lines: string[], i: number): boolean {
  const sep = lines[i + 1];
  return lines[i]!.includes("|") && sep !== undefined && sep.includes("|") && _TABLE_SEP.test(sep);
}

function _renderTable(rows: string[]): string {
  const cells = rows.filter((_, k) => k !== 1).map((row) =>
    row.trim().replace(/^\|/, "").replace(/(?<!\\)\|$/, "").split(/(?<!\\)\|/).map((c) =>
      c.trim().replace(/\\\|/g, "|").replace(/(\*\*|__)(.+?)\1/g, "$2").replace(/`([^`]+)`/g, "$1")
    )
  );
  const widths: number[] = [];
  for (const row of cells) {
    row.forEach((c, k) => widths[k] = Math.max(widths[k] ?? 0, [...c].length));
  }
  const line = (row: string[]): string =>
    widths.map((w, k) => (row[k] ?? "") + " ".repeat(w - [...(row[k] ?? "")].length)).join(" | ")
      .trimEnd();
  const out = cells.map(line);
  out.splice(1, 0, widths.map((w) => "-".repeat(w)).join("-+-"));
  return `<pre>${escapeHtml(out.join("\n"))}</pre>`;
}

/** One line outside code, tables and quotes: heading, rule, bullet or plain inline text. */
function _renderLine(line: string): string {
  if (line.trim() === "") return "";
  if (/^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$/.test(line)) return "———";
  const heading = /^ {0,3}#{1,6}(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$/.exec(line);
  if (heading) {
    // Inner bold tags are dropped: the whole line is bold already (removing every <b> and </b>
    // of a balanced fragment leaves it balanced).
    const inner = _renderInline(heading[1] ?? "").replace(/<\/?b>/g, "");
    return inner ? `<b>${inner}</b>` : "";
  }
  const bullet = /^(\s*)[-*+][ \t]+(.*)$/.exec(line);
  if (bullet) {
    const rest = bullet[2]!.replace(/^\[ \](?=\s)/, "☐").replace(/^\[[xX]\](?=\s)/, "☑");
    return `${bullet[1]}• ${_renderInline(rest)}`;
  }
  return _renderInline(line);
}

/**
 * Markdown (as LLMs write it) → Telegram HTML, escaped and balanced.
 *
 * @example
 * ```ts
 * markdownToTelegramHtml("**Hi** <you>"); // "<b>Hi</b> &lt;you&gt;"
 * ```
 */
export function markdownToTelegramHtml(md: string): string {
  const lines = md.replace(/\r\n?/g, "\n").split("\n");
  const out: string[] = [];
  const push = (html: string): void => {
    if (html !== "" || (out.length > 0 && out[out.length - 1] !== "")) out.push(html);
  };
  let i = 0;
  while (i < lines.length) {
    const fenceEnd = _fenceEnd(lines, i);
    if (fenceEnd > 0) {
      push(_renderFence(lines.slice(i, fenceEnd)));
      i = fenceEnd;
    } else if (_QUOTE.test(lines[i]!)) {
      const inner: string[] = [];
      for (; i < lines.length && _QUOTE.test(lines[i]!); i++) {
        inner.push(_renderLine(lines[i]!.replace(_QUOTE, "")));
      }
      const body = inner.join("\n").replace(/^\n+|\n+$/g, "").replace(/\n{3,}/g, "\n\n");
      push(body ? `<blockquote>${body}</blockquote>` : "");
    } else if (_isTableStart(lines, i)) {
      const start = i;
      for (i += 2; i < lines.length && lines[i]!.includes("|") && lines[i]!.trim(); i++);
      push(_renderTable(lines.slice(start, i)));
    } else {
      push(_renderLine(lines[i]!));
      i++;
    }
  }
  while (out.length > 0 && out[out.length - 1] === "") out.pop();
  return out.join("\n");
}

// ---------------------------------------------------------------------------------------------
// Inline level: a small version of CommonMark's delimiter-stack algorithm, one line at a time.

interface _Text {
  kind: "text";
  html: string;
}

interface _Delim {
  kind: "delim";
  ch: string;
  count: number;
  orig: number;
  canOpen: boolean;
  canClose: boolean;
  /** Tags to the right of the literal remainder (this run opened them). */
  opens: string;
  /** Tags to the left of the literal remainder (this run closed them). */
  closes: string;
  prev: _Delim | null;
  next: _Delim | null;
}

interface _Bracket {
  node: _Text;
  bottom: _Delim | null;
  start: number;
  active: boolean;
  prev: _Bracket | null;
}

const _ASCII_PUNCT = /[!-/:-@[-`{-~]/;
const _PUNCT = /[\p{P}\p{S}]/u;
const _SPACE = /\s/u;
const _AUTOLINK = /<((?:https?:\/\/|tg:\/\/|mailto:)[^\s<>]+)>/y;
const _SAFE_URL = /^(?:https?:\/\/|tg:\/\/|mailto:)\S/i;
/** Longest link destination or title looked for; keeps `[a](` repeated from going quadratic. */
const _MAX_URL = 2048;
const _TAGS: Record<string, [string, string]> = {
  "*1": ["<i>", "</i>"],
  "*2": ["<b>", "</b>"],
  "~2": ["<s>", "</s>"],
  "|2": ["<tg-spoiler>", "</tg-spoiler>"],
};

function _runLength(s: string, i: number, ch: string): number {
  let j = i;
  while (s[j] === ch) j++;
  return j - i;
}

function _charBefore(s: string, i: number): string {
  if (i === 0) return " ";
  const low = s.charCodeAt(i - 1);
  return low >= 0xdc00 && low <= 0xdfff && i >= 2 ? s.slice(i - 2, i) : s[i - 1]!;
}

function _charAt(s: string, i: number): string {
  return i >= s.length ? " " : String.fromCodePoint(s.codePointAt(i)!);
}

/** `(url "title")` after a `]` at `p`: the url and the index past `)`, or null. */
function _linkTail(s: string, p: number): { url: string; end: number } | null {
  if (s[p] !== "(") return null;
  let i = p + 1;
  while (s[i] === " " || s[i] === "\t") i++;
  let url: string;
  if (s[i] === "<") {
    const close = s.slice(0, i + _MAX_URL).indexOf(">", i + 1);
    if (close < 0 || s.slice(i + 1, close).includes("<")) return null;
    url = s.slice(i + 1, close);
    i = close + 1;
  } else {
    const start = i;
    const end = Math.min(s.length, start + _MAX_URL);
    for (let depth = 0; i < end && !_SPACE.test(s[i]!); i++) {
      if (s[i] === "\\" && i + 1 < s.length) i++;
      else if (s[i] === "(" && ++depth > 32) return null; // cmark's nesting limit
      else if (s[i] === ")" && depth-- === 0) break;
    }
    url = s.slice(start, i).replace(/\\([!-/:-@[-`{-~])/g, "$1");
  }
  while (s[i] === " " || s[i] === "\t") i++;
  const quote = s[i];
  if (quote === '"' || quote === "'") {
    const close = s.slice(0, i + _MAX_URL).indexOf(quote, i + 1);
    if (close < 0) return null;
    i = close + 1;
    while (s[i] === " " || s[i] === "\t") i++;
  }
  return s[i] === ")" ? { url, end: i + 1 } : null;
}

function _renderInline(src: string): string {
  const nodes: (_Text | _Delim)[] = [];
  let top: _Delim | null = null;
  let brackets: _Bracket | null = null;
  let text = "";
  const noCloser = new Set<number>(); // backtick run lengths with no closing run further on
  const flush = (): void => {
    if (text) nodes.push({ kind: "text", html: escapeHtml(text) });
    text = "";
  };
  const remove = (d: _Delim): void => {
    if (d.prev) d.prev.next = d.next;
    if (d.next) d.next.prev = d.prev;
    if (d === top) top = d.prev;
  };
  /** Pair the delimiters above `bottom`, then drop them from the stack. */
  const processEmphasis = (bottom: _Delim | null): void => {
    let closer: _Delim | null = null;
    for (let d = top; d && d !== bottom; d = d.prev) closer = d;
    const floors = new Map<string, _Delim | null>();
    while (closer) {
      if (!closer.canClose) {
        closer = closer.next;
        continue;
      }
      const key = `${closer.ch}${closer.canOpen}${closer.orig % 3}`;
      const floor = floors.has(key) ? floors.get(key) : bottom;
      let opener = closer.prev;
      for (; opener && opener !== bottom && opener !== floor; opener = opener.prev) {
        if (opener.ch !== closer.ch || !opener.canOpen) continue;
        const oddMatch = (closer.canOpen || opener.canClose) && closer.orig % 3 !== 0 &&
          (opener.orig + closer.orig) % 3 === 0;
        if (!oddMatch) break;
      }
      if (opener && opener !== bottom && opener !== floor) {
        const use = opener.count >= 2 && closer.count >= 2 ? 2 : 1;
        const [open, close] = _TAGS[`${closer.ch === "_" ? "*" : closer.ch}${use}`]!;
        opener.count -= use;
        closer.count -= use;
        opener.opens = open + opener.opens;
        closer.closes += close;
        opener.next = closer; // delimiters in between can no longer pair
        closer.prev = opener;
        if (opener.count === 0) remove(opener);
        if (closer.count === 0) {
          const next: _Delim | null = closer.next;
          remove(closer);
          closer = next;
        }
      } else {
        floors.set(key, closer.prev);
        const next: _Delim | null = closer.next;
        if (!closer.canOpen) remove(closer);
        closer = next;
      }
    }
    top = bottom;
    if (bottom) bottom.next = null;
  };

  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (c === "\\" && i + 1 < src.length && _ASCII_PUNCT.test(src[i + 1]!)) {
      text += src[i + 1];
      i += 2;
    } else if (c === "`") {
      const run = _runLength(src, i, "`");
      let close = -1;
      if (!noCloser.has(run)) {
        for (let j = src.indexOf("`", i + run); j >= 0; j = src.indexOf("`", j)) {
          const len = _runLength(src, j, "`");
          if (len === run) {
            close = j;
            break;
          }
          j += len;
        }
        if (close < 0) noCloser.add(run);
      }
      if (close < 0) {
        text += c.repeat(run);
        i += run;
        continue;
      }
      let code = src.slice(i + run, close);
      if (/^ [\s\S]* $/.test(code) && code.trim() !== "") code = code.slice(1, -1);
      flush();
      nodes.push({ kind: "text", html: `<code>${escapeHtml(code)}</code>` });
      i = close + run;
    } else if (c === "<") {
      _AUTOLINK.lastIndex = i;
      const m = _AUTOLINK.exec(src);
      if (m) {
        flush();
        const url = m[1]!;
        nodes.push({ kind: "text", html: `<a href="${_escapeAttr(url)}">${escapeHtml(url)}</a>` });
        for (let p = brackets; p?.active; p = p.prev) p.active = false; // no link around it
        i += m[0].length;
      } else {
        text += c;
        i++;
      }
    } else if (c === "[") {
      flush();
      const node: _Text = { kind: "text", html: "[" };
      nodes.push(node);
      brackets = { node, bottom: top, start: i + 1, active: true, prev: brackets };
      i++;
    } else if (c === "]" && brackets) {
      const b: _Bracket = brackets;
      brackets = b.prev;
      const link = b.active ? _linkTail(src, i + 1) : null;
      if (!link) {
        text += c;
        i++;
        continue;
      }
      flush();
      processEmphasis(b.bottom);
      if (_SAFE_URL.test(link.url)) {
        b.node.html = `<a href="${_escapeAttr(link.url)}">`;
        const empty = src.slice(b.start, i).trim() === "";
        nodes.push({ kind: "text", html: `${empty ? escapeHtml(link.url) : ""}</a>` });
      } else {
        b.node.html = "";
        nodes.push({ kind: "text", html: escapeHtml(` (${link.url})`) });
      }
      // No links inside links. Brackets below an inactive one are inactive already.
      for (let p = brackets; p?.active; p = p.prev) p.active = false;
      i = link.end;
    } else if (c === "*" || c === "_" || c === "~" || c === "|") {
      const run = _runLength(src, i, c);
      if ((c === "~" || c === "|") && run !== 2) {
        text += c.repeat(run);
        i += run;
        continue;
      }
      flush();
      const before = _charBefore(src, i);
      const after = _charAt(src, i + run);
      const [spaceB, spaceA] = [_SPACE.test(before), _SPACE.test(after)];
      const [punctB, punctA] = [_PUNCT.test(before), _PUNCT.test(after)];
      const left = !spaceA && (!punctA || spaceB || punctB);
      const right = !spaceB && (!punctB || spaceA || punctA);
      const d: _Delim = {
        kind: "delim",
        ch: c,
        count: run,
        orig: run,
        canOpen: c === "_" ? left && (!right || punctB) : left,
        canClose: c === "_" ? right && (!left || punctA) : right,
        opens: "",
        closes: "",
        prev: top,
        next: null,
      };
      if (top) top.next = d;
      top = d;
      nodes.push(d);
      i += run;
    } else {
      text += c;
      i++;
    }
  }
  flush();
  processEmphasis(null);
  return nodes.map((n) => n.kind === "text" ? n.html : n.closes + n.ch.repeat(n.count) + n.opens)
    .join("");
}

// ---------------------------------------------------------------------------------------------
// Splitting

/** A piece of text, the separator that preceded it, and a prefix to add if it starts a chunk. */
interface _Piece {
  text: string;
  sep: string;
  lead: string;
}

type _Fits = (text: string) => boolean;

function _trimBlankLines(s: string): string {
  return s.replace(/^\s*\n/, "").trimEnd();
}

/** Split `s` at each match of `re` (which must be global); the match's group 1 is the separator. */
function _piecesAt(s: string, re: RegExp, lead: string): _Piece[] {
  const pieces: _Piece[] = [];
  let last = 0;
  let sep = "";
  for (const m of s.matchAll(re)) {
    const cut = m.index + m[0].length - m[1]!.length;
    if (cut > last) pieces.push({ text: s.slice(last, cut), sep, lead: pieces.length ? lead : "" });
    sep = m[1]!;
    last = m.index + m[0].length;
  }
  if (last < s.length) pieces.push({ text: s.slice(last), sep, lead: pieces.length ? lead : "" });
  return pieces;
}

/**
 * Greedily pack consecutive pieces into chunks that fit; a piece that does not fit alone is handed
 * to `deeper`. Each chunk is the largest run that fits (found by galloping, then bisection).
 */
function _pack(pieces: _Piece[], fits: _Fits, deeper: (text: string) => string[]): string[] {
  const out: string[] = [];
  const join = (i: number, j: number): string => {
    let s = pieces[i]!.lead + pieces[i]!.text;
    for (let k = i + 1; k <= j; k++) s += pieces[k]!.sep + pieces[k]!.text;
    return _trimBlankLines(s);
  };
  let i = 0;
  while (i < pieces.length) {
    const head = join(i, i);
    if (head === "") {
      i++;
      continue;
    }
    if (!fits(head)) {
      out.push(...deeper(pieces[i]!.lead + pieces[i]!.text));
      i++;
      continue;
    }
    let lo = i;
    let hi = pieces.length;
    for (let step = 1; lo + step < hi; step *= 2) {
      if (fits(join(i, lo + step))) lo += step;
      else hi = lo + step;
    }
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (fits(join(i, mid))) lo = mid;
      else hi = mid;
    }
    out.push(join(i, lo));
    i = lo + 1;
  }
  return out;
}

/** Made on first use: building a Segmenter loads ICU data (about 5 MB) a gateway may never need. */
let _graphemes: Intl.Segmenter | undefined;

/** Hard cuts: between grapheme clusters, or between code points for a cluster that is too long. */
function _splitHard(s: string, fits: _Fits, lead: string): string[] {
  const toPieces = (parts: Iterable<string>): _Piece[] =>
    [...parts].map((text, k) => ({ text, sep: "", lead: k ? lead : "" }));
  const codePoints = (t: string): string[] => _pack(toPieces(t), fits, (c) => [c]);
  return _pack(
    toPieces(
      [...(_graphemes ??= new Intl.Segmenter(undefined, { granularity: "grapheme" })).segment(s)]
        .map((g) => g.segment),
    ),
    fits,
    codePoints,
  );
}

/** A line: at sentence ends, then at whitespace, then hard. Quote markers carry over. */
function _splitLine(line: string, fits: _Fits, markdown: boolean): string[] {
  const lead = markdown ? (_QUOTE.exec(line)?.[0] ?? "") : "";
  const words = (s: string): string[] =>
    _pack(_piecesAt(s, /(\s+)/g, lead), fits, (w) => _splitHard(w, fits, lead));
  return _pack(_piecesAt(line, /[.!?]["'”’)\]]*(\s+)/g, lead), fits, words);
}

/** A paragraph: at line breaks. */
function _splitParagraph(text: string, fits: _Fits, markdown: boolean): string[] {
  const lines = text.split("\n").map((l, k): _Piece => ({ text: l, sep: k ? "\n" : "", lead: "" }));
  return _pack(lines, fits, (l) => _splitLine(l, fits, markdown));
}

/** A fenced code block: at line breaks, each chunk closed and the next reopened. */
function _splitFence(block: string, fits: _Fits): string[] {
  const lines = block.split("\n");
  const open = _fenceOpen(lines[0]!)!;
  const closed = lines.length > 1 && _isFenceClose(lines[lines.length - 1]!, open);
  const bare = " ".repeat(open.indent) + open.marker;
  let head = lines[0]!;
  const wrap = (body: string): string => `${head}\n${body}\n${bare}`;
  if (!fits(wrap("&"))) head = bare; // no room for the language at this limit
  const fitsBody = (body: string): boolean => fits(wrap(body));
  const body = lines.slice(1, closed ? -1 : undefined);
  const pieces = body.map((text, k): _Piece => ({ text, sep: k ? "\n" : "", lead: "" }));
  const longLine = (l: string): string[] =>
    _pack(_piecesAt(l, /(\s+)/g, ""), fitsBody, (w) => _splitHard(w, fitsBody, ""));
  return _pack(pieces, fitsBody, longLine).map(wrap);
}

/** Paragraphs (split at blank lines) and, in Markdown, fenced blocks as units of their own. */
function _blocks(text: string, markdown: boolean): _Piece[] {
  const lines = text.split("\n");
  const pieces: _Piece[] = [];
  let para: string[] = [];
  let sep = "";
  const add = (t: string): void => {
    pieces.push({ text: t, sep: pieces.length ? sep : "", lead: "" });
    sep = "\n";
  };
  const flush = (): void => {
    if (para.length) add(para.join("\n"));
    para = [];
  };
  for (let i = 0; i < lines.length;) {
    const end = markdown ? _fenceEnd(lines, i) : -1;
    if (end > 0) {
      flush();
      add(lines.slice(i, end).join("\n"));
      i = end;
    } else if (lines[i]!.trim() === "") {
      flush();
      sep = "\n\n";
      i++;
    } else {
      para.push(lines[i++]!);
    }
  }
  flush();
  return pieces;
}

function _split(text: string, fits: _Fits, markdown: boolean): string[] {
  const normalized = text.replace(/\r\n?/g, "\n");
  if (normalized.trim() === "") return [];
  const deeper = (block: string): string[] =>
    markdown && _fenceOpen(block.split("\n", 1)[0]!)
      ? _splitFence(block, fits)
      : _splitParagraph(block, fits, markdown);
  return _pack(_blocks(normalized, markdown), fits, deeper);
}

function _checkLimit(limit: number, min: number): void {
  if (!Number.isInteger(limit) || limit < min) {
    throw new RangeError(`limit: expected an integer >= ${min}, got ${limit}`);
  }
}

/**
 * Split Markdown into chunks whose HTML (markdownToTelegramHtml) is each ≤ limit. Never returns an
 * empty chunk; returns [] for empty/whitespace input.
 *
 * Boundaries, in order of preference: blank line, line break, sentence end, whitespace, then a hard
 * cut between grapheme clusters. A fenced code block is kept whole when it fits in one chunk;
 * otherwise it is cut at line breaks and every part is closed and reopened with the same fence.
 * A `limit` below 40 throws a `RangeError` (too small for one escaped character in a quote).
 *
 * @example
 * ```ts
 * splitMarkdown("first paragraph\n\nsecond paragraph", 40); // ["first paragraph", "second paragraph"]
 * ```
 */
export function splitMarkdown(md: string, limit: number = TELEGRAM_TEXT_LIMIT): string[] {
  _checkLimit(limit, _MIN_MARKDOWN_LIMIT);
  return _split(md, (s) => markdownToTelegramHtml(s).length <= limit, true);
}

/**
 * Split plain text (no formatting; used while a reply streams) into pieces ≤ limit on the same
 * boundaries (blank line, line break, sentence end, whitespace, grapheme cluster). Returns [] for
 * empty/whitespace input; `limit` must be at least 2.
 *
 * @example
 * ```ts
 * splitPlain("One. Two.", 5); // ["One.", "Two."]
 * ```
 */
export function splitPlain(text: string, limit: number = TELEGRAM_TEXT_LIMIT): string[] {
  _checkLimit(limit, 2);
  return _split(text, (s) => s.length <= limit, false);
}

/**
 * Markdown → { html chunks } convenience: splitMarkdown then convert each. Chunks that render to
 * nothing (an empty code block, a bare `>`) are dropped, since Telegram rejects empty messages.
 *
 * @example
 * ```ts
 * toTelegramChunks("**hello**"); // ["<b>hello</b>"]
 * ```
 */
export function toTelegramChunks(md: string, limit: number = TELEGRAM_TEXT_LIMIT): string[] {
  return splitMarkdown(md, limit).map(markdownToTelegramHtml).filter((h) => h.trim() !== "");
}
