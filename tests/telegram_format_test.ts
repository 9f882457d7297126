/**
 * Markdown → Telegram HTML: escaping, each construct, and splitting into messages. Every HTML string
 * produced here goes through `assertTelegramHtml`, a small tag scanner that accepts only what
 * Telegram's HTML parse mode accepts.
 */
import assert from "node:assert/strict";
import { mulberry32 } from "./_helpers.ts";
import {
  escapeHtml,
  markdownToTelegramHtml,
  splitMarkdown,
  splitPlain,
  TELEGRAM_TEXT_LIMIT,
  toTelegramChunks,
} from "../channels/telegram_format.ts";

// ---------------------------------------------------------------------------------------------
// Validator

const ALLOWED_TAGS = new Set([
  "b",
  "strong",
  "i",
  "em",
  "u",
  "s",
  "strike",
  "del",
  "tg-spoiler",
  "a",
  "code",
  "pre",
  "blockquote",
]);

function assertEntities(text: string, where: string): void {
  for (let i = text.indexOf("&"); i >= 0; i = text.indexOf("&", i + 1)) {
    assert.match(text.slice(i, i + 6), /^&(?:amp|lt|gt|quot);/, `bare & ${where}: ${text}`);
  }
}

/** Only Telegram's tags, balanced and properly nested, and no raw `<`, `>` or bare `&`. */
function assertTelegramHtml(html: string): void {
  assert.ok(html.isWellFormed(), `lone surrogate in ${JSON.stringify(html)}`);
  const stack: string[] = [];
  let i = 0;
  while (i < html.length) {
    const c = html[i]!;
    if (c === "<") {
      const m = /^<(\/?)([a-z-]+)((?: [^<>]*)?)>/.exec(html.slice(i));
      assert.ok(m, `malformed tag at ${i}: ${JSON.stringify(html)}`);
      const [whole, slash, name, attrs] = m as unknown as [string, string, string, string];
      assert.ok(ALLOWED_TAGS.has(name), `tag <${name}> not allowed: ${html}`);
      const parent = stack.at(-1);
      if (slash) {
        assert.equal(attrs, "", `attributes on a closing tag: ${html}`);
        assert.equal(parent, name, `</${name}> closes <${parent}>: ${html}`);
        stack.pop();
      } else {
        if (parent === "pre") {
          assert.equal(name, "code", `<${name}> inside <pre>: ${html}`);
          assert.ok(html.slice(0, i).endsWith("<pre>"), `<code> not first in <pre>: ${html}`);
        } else {
          assert.notEqual(parent, "code", `<${name}> inside <code>: ${html}`);
        }
        if (name === "a") {
          assert.match(attrs, /^ href="[^"<>]+"$/, `bad <a> attributes: ${html}`);
          assertEntities(attrs, "in href");
          assert.ok(!stack.includes("a"), `nested <a>: ${html}`);
        } else if (name === "code" && parent === "pre") {
          assert.match(attrs, /^(?: class="language-[A-Za-z0-9_+-]+")?$/, `bad <code>: ${html}`);
        } else if (name === "blockquote") {
          assert.match(attrs, /^(?: expandable)?$/);
          assert.ok(!stack.includes("blockquote"), `nested <blockquote>: ${html}`);
        } else {
          assert.equal(attrs, "", `attributes on <${name}>: ${html}`);
        }
        stack.push(name);
      }
      i += whole.length;
    } else {
      assert.notEqual(c, ">", `raw > at ${i}: ${html}`);
      if (c === "&") assert.match(html.slice(i, i + 6), /^&(?:amp|lt|gt|quot);/, `bare &: ${html}`);
      i++;
    }
  }
  assert.deepEqual(stack, [], `unclosed tags in ${html}`);
}

/** Convert and validate. */
function html(md: string): string {
  const out = markdownToTelegramHtml(md);
  assertTelegramHtml(out);
  return out;
}

/** Split, check every chunk (non-empty, HTML valid and within the limit) and return the chunks. */
function chunksOf(md: string, limit = TELEGRAM_TEXT_LIMIT): string[] {
  const chunks = splitMarkdown(md, limit);
  for (const chunk of chunks) {
    assert.notEqual(chunk.trim(), "", "empty chunk");
    assert.equal(chunk, chunk.replace(/^\s*\n/, "").trimEnd(), "chunk not trimmed");
    const out = html(chunk);
    assert.ok(out.length <= limit, `chunk HTML is ${out.length} > ${limit}`);
  }
  return chunks;
}

const nonSpace = (s: string): string => s.replace(/\s+/g, "");
const withoutFences = (s: string): string =>
  s.split("\n").filter((l) => !/^\s*(?:```|~~~)/.test(l)).join("\n");
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

const WORDS = ["gateway", "session", "token", "channel", "reply", "model", "cron", "device"];

/** `n` paragraphs of plain sentences, separated by blank lines. */
function prose(chars: number, seed = 1): string {
  const r = mulberry32(seed);
  const paragraphs: string[] = [];
  let total = 0;
  while (total < chars) {
    const sentences: string[] = [];
    const count = 3 + Math.floor(r() * 6);
    for (let s = 0; s < count; s++) {
      const words = Array.from({ length: 6 + Math.floor(r() * 10) }, () => WORDS[r() * 8 | 0]);
      const sentence = words.join(" ");
      sentences.push(sentence[0]!.toUpperCase() + sentence.slice(1) + ".");
    }
    const p = sentences.join(" ");
    paragraphs.push(p);
    total += p.length + 2;
  }
  return paragraphs.join("\n\n");
}

// ---------------------------------------------------------------------------------------------
// Escaping

Deno.test("escapeHtml escapes &, < and > and nothing else", () => {
  assert.equal(escapeHtml(`a < b && c > d "q" 'x'`), `a &lt; b &amp;&amp; c &gt; d "q" 'x'`);
});

Deno.test("markdownToTelegramHtml escapes comparison operators and ampersands", () => {
  assert.equal(html("a < b && c > d"), "a &lt; b &amp;&amp; c &gt; d");
});

Deno.test("markdownToTelegramHtml never passes through tags typed in the input", () => {
  assert.equal(html("<script>alert(1)</script>"), "&lt;script&gt;alert(1)&lt;/script&gt;");
  assert.equal(html("<b>not bold</b>"), "&lt;b&gt;not bold&lt;/b&gt;");
  assert.equal(html("<!-- comment -->"), "&lt;!-- comment --&gt;");
  assert.equal(html('<a href="https://e.com">x</a>'), '&lt;a href="https://e.com"&gt;x&lt;/a&gt;');
});

Deno.test("markdownToTelegramHtml shows a literal &amp; as typed", () => {
  assert.equal(html("&amp; &lt; &#39;"), "&amp;amp; &amp;lt; &amp;#39;");
});

Deno.test("markdownToTelegramHtml escapes quotes inside a link's href", () => {
  assert.equal(html('[x](https://e.com/?a="b")'), '<a href="https://e.com/?a=&quot;b&quot;">x</a>');
  assert.equal(
    html("[x](https://e.com/?a=<b>&c)"),
    '<a href="https://e.com/?a=&lt;b&gt;&amp;c">x</a>',
  );
});

// ---------------------------------------------------------------------------------------------
// Inline constructs

Deno.test("bold: **x** and __x__", () => {
  assert.equal(html("**bold** and __also__"), "<b>bold</b> and <b>also</b>");
});

Deno.test("italic: *x* and _x_", () => {
  assert.equal(html("*it* and _it_"), "<i>it</i> and <i>it</i>");
});

Deno.test("strikethrough ~~x~~ and spoiler ||x||", () => {
  assert.equal(html("~~gone~~ ||secret||"), "<s>gone</s> <tg-spoiler>secret</tg-spoiler>");
  assert.equal(html("~5 min, a ~ b, x || y"), "~5 min, a ~ b, x || y");
});

Deno.test("inline code with one or more backticks, contents escaped and unformatted", () => {
  assert.equal(html("run `a < b && **c**`"), "run <code>a &lt; b &amp;&amp; **c**</code>");
  assert.equal(html("``a ` b``"), "<code>a ` b</code>");
  assert.equal(html("`` `x` ``"), "<code>`x`</code>");
  assert.equal(html("`unclosed **b**"), "`unclosed <b>b</b>");
});

Deno.test("links: http(s), tg and mailto become <a>, formatting allowed inside", () => {
  assert.equal(html("[docs](https://e.com/a_b)"), '<a href="https://e.com/a_b">docs</a>');
  assert.equal(html("[me](tg://user?id=1)"), '<a href="tg://user?id=1">me</a>');
  assert.equal(html("[mail](mailto:a@b.c)"), '<a href="mailto:a@b.c">mail</a>');
  assert.equal(html("[**bold** link](http://x.y)"), '<a href="http://x.y"><b>bold</b> link</a>');
  assert.equal(html("[wiki](https://e.com/A_(b))"), '<a href="https://e.com/A_(b)">wiki</a>');
  assert.equal(html('[t](https://e.com "title")'), '<a href="https://e.com">t</a>');
  assert.equal(
    html("[see <https://a.b>](https://c.d)"),
    '[see <a href="https://a.b">https://a.b</a>](https://c.d)',
    "no link inside a link",
  );
  assert.equal(
    html("[[inner](https://a.b)](https://c.d)"),
    '[<a href="https://a.b">inner</a>](https://c.d)',
  );
});

Deno.test("links: javascript: and other schemes render as text (url)", () => {
  assert.equal(html("[click](javascript:alert(1))"), "click (javascript:alert(1))");
  assert.equal(html("[f](file:///etc/passwd)"), "f (file:///etc/passwd)");
  assert.equal(html("[rel](/path)"), "rel (/path)");
  assert.equal(html("[x](data:text/html,<b>)"), "x (data:text/html,&lt;b&gt;)");
});

Deno.test("autolinks <https://...> become links; other <...> stays text", () => {
  assert.equal(
    html("see <https://e.com/?a=1&b=2>"),
    'see <a href="https://e.com/?a=1&amp;b=2">https://e.com/?a=1&amp;b=2</a>',
  );
  assert.equal(html("<javascript:alert(1)>"), "&lt;javascript:alert(1)&gt;");
});

Deno.test("nesting: italic in bold, bold in italic, bold and italic together", () => {
  assert.equal(html("**bold _it_ bold**"), "<b>bold <i>it</i> bold</b>");
  assert.equal(html("*it **bold** it*"), "<i>it <b>bold</b> it</i>");
  assert.equal(html("***both***"), "<i><b>both</b></i>");
  assert.equal(html("~~**x**~~"), "<s><b>x</b></s>");
});

Deno.test("unmatched and non-emphasis markers stay literal", () => {
  assert.equal(html("**open"), "**open");
  assert.equal(html("close**"), "close**");
  assert.equal(html("2 * 3 * 4"), "2 * 3 * 4");
  assert.equal(html("snake_case_name"), "snake_case_name");
  assert.equal(html("a_b_c"), "a_b_c");
  assert.equal(html("call my_func(x_y)"), "call my_func(x_y)");
  assert.equal(html("[not a link] (x) ]["), "[not a link] (x) ][");
  assert.equal(html("\\*not italic\\*"), "*not italic*");
});

Deno.test("emphasis does not span lines", () => {
  assert.equal(html("**a\nb**"), "**a\nb**");
});

// ---------------------------------------------------------------------------------------------
// Block constructs

Deno.test("fenced code block with a language becomes pre>code.language-x, unformatted", () => {
  assert.equal(
    html("```ts\nconst a = 1 < 2 && **b**;\n  indented\n```"),
    '<pre><code class="language-ts">const a = 1 &lt; 2 &amp;&amp; **b**;\n  indented</code></pre>',
  );
  assert.equal(html("```\nplain\n```"), "<pre>plain</pre>");
  assert.equal(
    html('```"><script> x\ncode\n```'),
    '<pre><code class="language-script">code</code></pre>',
  );
  assert.equal(
    html("~~~python\nprint(1)\n~~~"),
    '<pre><code class="language-python">print(1)</code></pre>',
  );
});

Deno.test("an unclosed fence runs to the end", () => {
  assert.equal(
    html("text\n```js\nlet a = '<';\n\n# not a heading"),
    "text\n" +
      "<pre><code class=\"language-js\">let a = '&lt;';\n\n# not a heading</code></pre>",
  );
});

Deno.test("headings become a bold line", () => {
  assert.equal(html("# Title\n### **Sub** _it_ ###"), "<b>Title</b>\n<b>Sub <i>it</i></b>");
  assert.equal(html("#hashtag and ####### seven"), "#hashtag and ####### seven");
});

Deno.test("consecutive > lines merge into one blockquote", () => {
  assert.equal(
    html("> one\n> **two**\n>> nested\n\nafter"),
    "<blockquote>one\n<b>two</b>\nnested</blockquote>\n\nafter",
  );
  assert.equal(html("a > b"), "a &gt; b");
});

Deno.test("bullets become •, numbered lists stay, task boxes become ☐/☑", () => {
  assert.equal(
    html("- a\n* b\n+ c\n  - nested\n1. one\n2) two\n- [ ] todo\n- [x] done"),
    "• a\n• b\n• c\n  • nested\n1. one\n2) two\n• ☐ todo\n• ☑ done",
  );
});

Deno.test("horizontal rules become a line", () => {
  assert.equal(html("a\n\n---\n\n***\n\n_ _ _\nb"), "a\n\n———\n\n———\n\n———\nb");
});

Deno.test("tables become an aligned <pre> block", () => {
  assert.equal(
    html("| Name | Qty |\n|---|--:|\n| **apple** | 10 |\n| <pear> | `2` |\n\nafter"),
    "<pre>Name   | Qty\n-------+----\napple  | 10\n&lt;pear&gt; | 2</pre>\n\nafter",
  );
  assert.equal(html("a | b without separator"), "a | b without separator");
});

Deno.test("blank lines collapse and the output is trimmed", () => {
  assert.equal(html("\n\n a\n\n\n\nb\n\n"), " a\n\nb");
  assert.equal(html(""), "");
  assert.equal(html("```\n\n```"), "");
});

// ---------------------------------------------------------------------------------------------
// Fuzzing

// deno-fmt-ignore
const FUZZ_TOKENS = [
  "*", "**", "***", "_", "__", "~", "~~", "|", "||", "`", "``", "[", "]", "(", ")", "<", ">", "&",
  "#", "\\", "!", '"', "'", ".", " ", " ", " ", "\n", "\n", "\n\n", "```", "```ts\n", "\n```\n",
  "~~~", "> ", "- ", "* ", "1. ", "# ", "---", "| a | b |\n|---|---|\n", "word", "x_y", "2 * 3",
  "😀", "👨‍👩‍👧", "\uD83D\uDE00", "é", "https://e.com", "javascript:", "mailto:a@b.c", "tg://x",
  "&amp;", "&lt;", "<b>", "</b>", "<!--", "-->", "<https://e.com/a>", "](", "](https://e.com)",
  "](javascript:x)", "\t", "\r\n",
];

Deno.test("fuzz: 2,000 random Markdown strings render valid HTML and split within the limit", () => {
  const r = mulberry32(0xc0ffee);
  for (let n = 0; n < 2000; n++) {
    const parts: string[] = [];
    const count = 1 + Math.floor(r() * 80);
    for (let k = 0; k < count; k++) parts.push(FUZZ_TOKENS[Math.floor(r() * FUZZ_TOKENS.length)]!);
    const md = parts.join("");
    try {
      html(md);
      const limit = 40 + Math.floor(r() * 120);
      const chunks = chunksOf(md, limit);
      assert.equal(md.trim() === "", chunks.length === 0);
      for (const out of toTelegramChunks(md, limit)) {
        assertTelegramHtml(out);
        assert.ok(out.length <= limit && out.trim() !== "");
      }
      for (const piece of splitPlain(md, limit)) {
        assert.ok(piece.length <= limit && piece.trim() !== "" && !LONE_SURROGATE.test(piece));
      }
    } catch (e) {
      throw new Error(`input #${n}: ${JSON.stringify(md)}`, { cause: e });
    }
  }
});

// ---------------------------------------------------------------------------------------------
// Splitting

Deno.test("splitMarkdown: empty or whitespace input gives no chunks", () => {
  assert.deepEqual(splitMarkdown(""), []);
  assert.deepEqual(splitMarkdown(" \n\n\t\n"), []);
  assert.deepEqual(splitPlain(""), []);
  assert.deepEqual(splitPlain("  \n "), []);
  assert.deepEqual(toTelegramChunks("\n\n"), []);
});

Deno.test("splitMarkdown: a short message is one chunk, trimmed of blank lines", () => {
  assert.deepEqual(splitMarkdown("\n\n  **hi**\n\n"), ["  **hi**"]);
  assert.deepEqual(toTelegramChunks("**hi** <there>"), ["<b>hi</b> &lt;there&gt;"]);
});

Deno.test("splitMarkdown: 10,000 chars of prose split at paragraph ends, content kept", () => {
  const md = prose(10_000);
  const chunks = chunksOf(md);
  assert.ok(chunks.length >= 3 && chunks.length <= 4, `${chunks.length} chunks`);
  const paragraphs = new Set(md.split("\n\n"));
  for (const chunk of chunks) {
    for (const p of chunk.split("\n\n")) assert.ok(paragraphs.has(p), "paragraph was cut");
  }
  for (const chunk of chunks.slice(0, -1)) assert.ok(chunk.length > 2500, "chunk underfilled");
  assert.equal(nonSpace(chunks.join("")), nonSpace(md));
});

Deno.test("splitMarkdown: one long paragraph splits at line breaks, then sentence ends", () => {
  const lines = prose(9000, 2).replaceAll("\n\n", "\n");
  const byLine = chunksOf(lines);
  const allLines = new Set(lines.split("\n"));
  for (const chunk of byLine) for (const l of chunk.split("\n")) assert.ok(allLines.has(l));
  assert.equal(nonSpace(byLine.join("")), nonSpace(lines));

  const oneLine = prose(9000, 3).replaceAll("\n\n", " ");
  const bySentence = chunksOf(oneLine);
  assert.ok(bySentence.length >= 3);
  for (const chunk of bySentence) assert.match(chunk, /^[A-Z].*\.$/);
  assert.equal(nonSpace(bySentence.join("")), nonSpace(oneLine));
});

Deno.test("splitMarkdown: text without sentence ends splits at whitespace", () => {
  const md = "word ".repeat(3000);
  const chunks = chunksOf(md);
  for (const chunk of chunks) assert.match(chunk, /^word( word)*$/);
  assert.equal(nonSpace(chunks.join("")), nonSpace(md));
});

Deno.test("splitMarkdown: a code block that fits is kept whole in its own chunk", () => {
  const code = "```py\n" + Array.from({ length: 150 }, (_, k) => `x_${k} = ${k} * 2`).join("\n") +
    "\n```";
  const md = `${prose(2500, 4)}\n\n${code}\n\n${prose(2000, 5)}`;
  const chunks = chunksOf(md);
  assert.ok(chunks.some((c) => c.includes(code)), "code block was split");
  assert.equal(nonSpace(chunks.join("")), nonSpace(md));
});

Deno.test("splitMarkdown: a 9,000-char code block splits into valid fenced blocks", () => {
  const lines = Array.from({ length: 400 }, (_, k) => `  const v${k} = "<${k}>" && f(${k});`);
  const md = "```ts\n" + lines.join("\n") + "\n```";
  assert.ok(md.length > 9000);
  const chunks = chunksOf(md);
  assert.ok(chunks.length >= 3, `${chunks.length} chunks`);
  const lineSet = new Set(lines);
  for (const chunk of chunks) {
    assert.match(chunk, /^```ts\n[^]*\n```$/);
    const out = markdownToTelegramHtml(chunk);
    assert.match(out, /^<pre><code class="language-ts">[^<]*<\/code><\/pre>$/);
    for (const l of chunk.split("\n").slice(1, -1)) assert.ok(lineSet.has(l), `cut line: ${l}`);
  }
  assert.equal(nonSpace(withoutFences(chunks.join("\n"))), nonSpace(withoutFences(md)));
});

Deno.test("splitMarkdown: an unclosed code block is closed in every chunk", () => {
  const md = "intro\n\n~~~\n" + "a <b> & c\n".repeat(900);
  const chunks = chunksOf(md);
  for (const chunk of chunks.slice(1)) assert.match(chunk, /^~~~\n[^]*\n~~~$/);
  assert.equal(nonSpace(withoutFences(chunks.join("\n"))), nonSpace(withoutFences(md)));
});

Deno.test("splitMarkdown: a code line longer than the limit is cut and stays in the fence", () => {
  const md = "```\n" + "ab<".repeat(3000) + "\n```";
  const chunks = chunksOf(md);
  for (const chunk of chunks) assert.match(chunk, /^```\n[ab<]+\n```$/);
  assert.equal(nonSpace(withoutFences(chunks.join("\n"))), nonSpace(withoutFences(md)));
});

Deno.test("splitMarkdown: escaping growth (< becomes &lt;) still respects the limit", () => {
  for (const md of ["<".repeat(10_000), "a < b & c > d. ".repeat(1000), "&&&& ".repeat(2000)]) {
    const chunks = chunksOf(md);
    assert.ok(chunks.length >= 3);
    assert.equal(nonSpace(chunks.join("")), nonSpace(md));
  }
});

Deno.test("splitMarkdown: emoji and grapheme clusters are never cut", () => {
  const family = "👨‍👩‍👧‍👦";
  for (const [unit, n] of [["😀", 5000], [family, 1500], ["e\u0301", 5000]] as const) {
    const md = unit.repeat(n);
    const chunks = chunksOf(md);
    assert.ok(chunks.length >= 2);
    for (const chunk of chunks) {
      assert.ok(!LONE_SURROGATE.test(chunk), "surrogate pair cut");
      assert.equal(chunk.replaceAll(unit, ""), "", "grapheme cluster cut");
    }
    assert.equal(chunks.join(""), md);
  }
});

Deno.test("splitMarkdown: a small limit (50) works for prose, code, quotes and entities", () => {
  const md = `# Title\n\n${prose(600, 6)}\n\n\`\`\`typescript\n${"let a = b < c;\n".repeat(20)}` +
    `\`\`\`\n\n> ${"quoted words and more. ".repeat(20)}\n\n${"&".repeat(100)}`;
  const chunks = chunksOf(md, 50);
  assert.ok(chunks.length > 20);
  const code = chunks.filter((c) => c.includes("let a"));
  for (const chunk of code) assert.match(chunk, /^```(?:typescript)?\n[^]*\n```$/);
  const quoted = chunks.filter((c) => c.includes("quoted"));
  for (const chunk of quoted) {
    assert.match(markdownToTelegramHtml(chunk), /^<blockquote>.*<\/blockquote>$/);
  }
  const plain = (s: string): string => nonSpace(withoutFences(s)).replace(/>/g, "");
  assert.equal(plain(chunks.join("\n")), plain(md));
});

Deno.test("splitMarkdown: a limit below 40 is rejected", () => {
  assert.throws(() => splitMarkdown("x", 39), RangeError);
  assert.throws(() => splitMarkdown("x", 100.5), RangeError);
  assert.throws(() => splitPlain("x", 1), RangeError);
});

Deno.test("toTelegramChunks: every chunk is valid HTML within the limit", () => {
  const md = `${prose(5000, 7)}\n\n**bold** [link](https://e.com) <tag>\n\n` +
    "```js\n" + "x <= y && z;\n".repeat(400) + "```";
  const chunks = toTelegramChunks(md);
  assert.ok(chunks.length >= 3);
  for (const chunk of chunks) {
    assertTelegramHtml(chunk);
    assert.ok(chunk.length <= TELEGRAM_TEXT_LIMIT);
  }
  assert.ok(
    chunks.some((c) => c.includes('<b>bold</b> <a href="https://e.com">link</a> &lt;tag&gt;')),
  );
});

Deno.test("splitPlain: same boundaries, raw length within the limit, content kept", () => {
  const text = prose(10_000, 8);
  const chunks = splitPlain(text);
  assert.ok(chunks.length >= 3);
  const paragraphs = new Set(text.split("\n\n"));
  for (const chunk of chunks) {
    assert.ok(chunk.length <= TELEGRAM_TEXT_LIMIT);
    for (const p of chunk.split("\n\n")) assert.ok(paragraphs.has(p));
  }
  assert.equal(nonSpace(chunks.join("")), nonSpace(text));

  const small = splitPlain("One sentence here. Another one there! A third? Yes.", 20);
  assert.deepEqual(small, ["One sentence here.", "Another one there!", "A third? Yes."]);
  const code = "```\n<<<\n```";
  assert.deepEqual(splitPlain(code), [code], "plain text is not interpreted");
});

Deno.test("splitPlain: emoji are never cut and pieces respect a small limit", () => {
  const text = "😀".repeat(101);
  const chunks = splitPlain(text, 5);
  for (const chunk of chunks) {
    assert.ok(chunk.length <= 5 && !LONE_SURROGATE.test(chunk));
  }
  assert.equal(chunks.join(""), text);
});
