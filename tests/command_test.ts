/**
 * Command analysis for exec approvals: parsing without interpretation,
 * binary resolution, allowlist globs, the approval display (GHSA-pcqg,
 * GHSA-9r3v) and invocation pinning.
 */
import assert from "node:assert/strict";
import {
  displayCommand,
  type Invocation,
  matchesAllowlist,
  parseCommand,
  type RefusalReason,
  resolveBinary,
  sameInvocation,
  suspicious,
} from "../lib/exec/command.ts";

// ---------------------------------------------------------------- parseCommand

const PARSED: [string, string[][], string[]][] = [
  ["ls -la", [["ls", "-la"]], []],
  ["  ls \t  -la  ", [["ls", "-la"]], []],
  [`echo 'a b' "c d"`, [["echo", "a b", "c d"]], []],
  [`echo 'a"b' "c'd"`, [["echo", 'a"b', "c'd"]], []],
  [`echo '$HOME \\n \`x\` * ? [a] ~ > < & | ;'`, [[
    "echo",
    "$HOME \\n `x` * ? [a] ~ > < & | ;",
  ]], []],
  [`echo "a\\"b" "a\\\\b" "\\$HOME" "\\\`x\\\`"`, [["echo", 'a"b', "a\\b", "$HOME", "`x`"]], []],
  [`echo "a\\nb"`, [["echo", "a\\nb"]], []],
  [`echo "*.ts" "?" "[x]" "{a,b}" "~" "a > b" "x && y"`, [[
    "echo",
    "*.ts",
    "?",
    "[x]",
    "{a,b}",
    "~",
    "a > b",
    "x && y",
  ]], []],
  ["echo a\\ b \\* \\$x \\> \\& \\' \\\"", [["echo", "a b", "*", "$x", ">", "&", "'", '"']], []],
  ["echo '' \"\" x", [["echo", "", "", "x"]], []],
  [`echo a""b 'c'd"e"`, [["echo", "ab", "cde"]], []],
  [`echo 'it'\\''s'`, [["echo", "it's"]], []],
  ["a && b; c | d", [["a"], ["b"], ["c"], ["d"]], ["&&", ";", "|"]],
  ["a&&b||c;d|e", [["a"], ["b"], ["c"], ["d"], ["e"]], ["&&", "||", ";", "|"]],
  ["git status || git init", [["git", "status"], ["git", "init"]], ["||"]],
  ["a\nb", [["a"], ["b"]], [";"]],
  ["\n\na\n\n", [["a"]], []],
  ["a;", [["a"]], []],
  ["a; \n", [["a"]], []],
  ["a &&\n  b", [["a"], ["b"]], ["&&"]],
  ["a |\n b", [["a"], ["b"]], ["|"]],
  ["echo ab\\\ncd", [["echo", "abcd"]], []],
  ["ls # a comment; rm -rf /", [["ls"]], []],
  ["ls # comment\npwd", [["ls"], ["pwd"]], [";"]],
  ["echo a#b", [["echo", "a#b"]], []],
  ["echo $", [["echo", "$"]], []],
  [`echo "$" "cost: $ 5"`, [["echo", "$", "cost: $ 5"]], []],
  ["echo a$ | wc", [["echo", "a$"], ["wc"]], ["|"]],
  ["find . -exec echo {} \\;", [["find", ".", "-exec", "echo", "{}", ";"]], []],
  ["echo a~b a=b", [["echo", "a~b", "a=b"]], []],
  ["'if' x", [["if", "x"]], []],
  [`"A=b" cmd`, [["A=b", "cmd"]], []],
  ["ｒｍ -rf /", [["ｒｍ", "-rf", "/"]], []],
  ["echo a；rm", [["echo", "a；rm"]], []],
  ["echo a\u200Bb", [["echo", "a\u200Bb"]], []],
];

Deno.test("parseCommand tokenizes quotes and escapes and splits chains", () => {
  for (const [input, argvs, operators] of PARSED) {
    const parsed = parseCommand(input);
    assert.equal(parsed.refused, undefined, `${JSON.stringify(input)}: ${parsed.refused?.detail}`);
    assert.deepEqual(parsed.segments.map((s) => s.argv), argvs, JSON.stringify(input));
    assert.deepEqual(parsed.operators, operators, JSON.stringify(input));
    assert.equal(parsed.operators.length, parsed.segments.length - 1, JSON.stringify(input));
  }
});

const REFUSED: [string, RefusalReason][] = [
  ["cat a > b", "redirection"],
  ["cat a>b", "redirection"],
  ["cat a >> b", "redirection"],
  ["cat < a", "redirection"],
  ["cmd 2> err", "redirection"],
  ["cmd 2>&1", "redirection"],
  ["cmd &> out", "redirection"],
  ["cmd >| out", "redirection"],
  ["a |& b", "redirection"],
  ["echo $(id)", "substitution"],
  [`echo "$(id)"`, "substitution"],
  ["echo $((1+2))", "substitution"],
  [`echo "$[1+2]"`, "substitution"],
  ["echo `id`", "backticks"],
  ['echo "`id`"', "backticks"],
  ["echo a`id`b", "backticks"],
  ["sleep 1 &", "background"],
  ["a & b", "background"],
  ["(ls)", "subshell"],
  ["ls )", "subshell"],
  ["echo a(b", "subshell"],
  ["{ ls; }", "subshell"],
  ["if true; then ls; fi", "subshell"],
  ["while true; do ls; done", "subshell"],
  ["! ls", "subshell"],
  ["ls && for x in a; do ls; done", "subshell"],
  ["ls *.ts", "glob"],
  ["ls a?", "glob"],
  ["ls [ab]", "glob"],
  ["ls x'*'*", "glob"],
  ["echo {a,b}", "glob"],
  ["echo x{1..3}", "glob"],
  ["cat <<EOF\nhi\nEOF", "heredoc"],
  ["cat <<-EOF", "heredoc"],
  ["cat <<< hi", "heredoc"],
  ["echo 'abc", "unterminated-quote"],
  ['echo "abc', "unterminated-quote"],
  ['echo "abc\\"', "unterminated-quote"],
  ["echo abc\\", "unterminated-quote"],
  ["", "empty"],
  ["   \t ", "empty"],
  ["\n\n", "empty"],
  ["# only a comment", "empty"],
  ["&& ls", "empty"],
  ["ls &&", "empty"],
  ["ls || ", "empty"],
  ["ls |", "empty"],
  ["; ls", "empty"],
  ["a;;b", "empty"],
  ["a && && b", "empty"],
  ["a | | b", "empty"],
  ['"" ls', "empty"],
  ["ls; '' x", "empty"],
  ["echo $HOME", "variable"],
  ["echo ${HOME}", "variable"],
  ['echo "$HOME"', "variable"],
  ['echo "a${b}c"', "variable"],
  ["echo $1 ", "variable"],
  ["echo $?", "variable"],
  ["echo $$", "variable"],
  ["echo $@", "variable"],
  ["echo $'\\x41'", "variable"],
  ['echo $"msg"', "variable"],
  ["ls ~", "variable"],
  ["ls ~/x", "variable"],
  ["ls --dir=~/x", "variable"],
  ["ls a:~/x", "variable"],
  ["PATH=/tmp/evil ls", "variable"],
  ["LD_PRELOAD=/tmp/x.so ls", "variable"],
  ['A="x y" ls', "variable"],
  ["ls && A=1 ls", "variable"],
];

Deno.test("parseCommand refuses what it would have to interpret, with the reason", () => {
  for (const [input, reason] of REFUSED) {
    const parsed = parseCommand(input);
    assert.equal(
      parsed.refused?.reason,
      reason,
      `${JSON.stringify(input)}: ${parsed.refused?.detail}`,
    );
    assert.ok(parsed.refused.detail.length > 0);
    assert.deepEqual(parsed.segments, [], JSON.stringify(input));
    assert.deepEqual(parsed.operators, [], JSON.stringify(input));
  }
});

Deno.test("parseCommand refusal details say what was found and where", () => {
  const cases: [string, RegExp][] = [
    ["cat a > b", /redirection `>` at offset 6/],
    ["cmd 2>&1", /redirection `2>&` at offset 4/],
    ["echo $(id)", /`\$\(` at offset 5/],
    ["echo 'abc", /single quote at offset 5/],
    ["PATH=/x ls", /environment assignment `PATH=\/x`/],
    ["ls &&", /after `&&`/],
  ];
  for (const [input, detail] of cases) {
    assert.match(parseCommand(input).refused?.detail ?? "", detail, input);
  }
});

Deno.test("parseCommand takes an argv array as one literal segment", () => {
  const argv = ["echo", "$(id)", "*", "a && b", ">", "`x`", "~", ""];
  const parsed = parseCommand(argv);
  assert.deepEqual(parsed, { segments: [{ argv }], operators: [] });
  assert.equal("refused" in parsed, false);
  argv[0] = "rm";
  assert.equal(parsed.segments[0]!.argv[0], "echo", "the segment is a copy");
  assert.deepEqual(parseCommand(["ls"]).segments, [{ argv: ["ls"] }]);
});

Deno.test("parseCommand refuses an empty argv array or program name", () => {
  for (const argv of [[], ["", "x"]]) {
    const parsed = parseCommand(argv);
    assert.equal(parsed.refused?.reason, "empty", JSON.stringify(argv));
    assert.deepEqual(parsed.segments, []);
  }
});

// ---------------------------------------------------------------- resolveBinary

async function makeTree(): Promise<string> {
  const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "gw_command_" }));
  for (const d of ["bin1", "bin2", "bin3", "work/scripts", "bin1/adir"]) {
    await Deno.mkdir(`${root}/${d}`, { recursive: true });
  }
  const file = async (path: string, mode: number): Promise<void> => {
    await Deno.writeTextFile(`${root}/${path}`, `#!/bin/sh\necho ${path}\n`);
    await Deno.chmod(`${root}/${path}`, mode);
  };
  await file("bin1/tool", 0o755);
  await file("bin2/tool", 0o755);
  await file("bin2/only2", 0o755);
  await file("bin1/plain", 0o644);
  await file("bin2/plain", 0o755);
  await file("bin3/plain", 0o600);
  await file("bin1/groupx", 0o610);
  await file("work/scripts/run.sh", 0o700);
  await Deno.chmod(`${root}/bin1/adir`, 0o755);
  await Deno.symlink(`${root}/bin2/only2`, `${root}/bin1/link`);
  await Deno.symlink("../bin2/tool", `${root}/bin3/rel-link`);
  await Deno.symlink(`${root}/bin1/link`, `${root}/bin3/chain`);
  await Deno.symlink(`${root}/nowhere`, `${root}/bin1/dangling`);
  await Deno.symlink(`${root}/bin1/plain`, `${root}/bin3/to-plain`);
  return root;
}

Deno.test({
  name: "resolveBinary finds executables by PATH, relative and absolute path",
  ignore: Deno.build.os === "windows",
  fn: async () => {
    const r = await makeTree();
    try {
      const cases: [string, string, string, string | null][] = [
        // name, PATH, cwd, expected (relative to root) or null
        ["tool", "bin1:bin2", "", "bin1/tool"],
        ["tool", "bin2:bin1", "", "bin2/tool"],
        ["only2", "bin1:bin2", "", "bin2/only2"],
        ["tool", "missing:bin2:bin1", "", "bin2/tool"],
        ["tool", "bin1/", "", "bin1/tool"],
        ["plain", "bin1", "", null],
        ["plain", "bin1:bin2", "", "bin2/plain"],
        ["plain", "bin3", "", null],
        ["groupx", "bin1", "", "bin1/groupx"],
        ["link", "bin1", "", "bin2/only2"],
        ["rel-link", "bin3", "", "bin2/tool"],
        ["chain", "bin3", "", "bin2/only2"],
        ["to-plain", "bin3", "", null],
        ["dangling", "bin1:bin2", "", null],
        ["adir", "bin1", "", null],
        ["nothing", "bin1:bin2:bin3", "", null],
        ["", "bin1", "", null],
        ["/bin1/tool", "", "", "bin1/tool"],
        ["/bin1/link", "", "", "bin2/only2"],
        ["/bin1/plain", "", "", null],
        ["/bin1/adir", "", "", null],
        ["/bin1/dangling", "", "", null],
        ["/bin1/nope", "", "", null],
        ["./scripts/run.sh", "", "work", "work/scripts/run.sh"],
        ["scripts/run.sh", "bin1", "work", "work/scripts/run.sh"],
        ["../bin1/tool", "", "work", "bin1/tool"],
        ["../bin1/plain", "", "work", null],
        ["./tool", "bin2", "bin1", "bin1/tool"],
        ["run.sh", "", "work/scripts", null],
      ];
      for (const [name, path, cwd, expected] of cases) {
        const abs = (p: string): string => (p === "" ? r : `${r}/${p}`);
        const got = await resolveBinary(name.startsWith("/") ? r + name : name, {
          path: path === "" ? "" : path.split(":").map(abs).join(":"),
          cwd: abs(cwd),
        });
        assert.equal(got, expected === null ? null : abs(expected), `${name} PATH=${path}`);
      }
    } finally {
      await Deno.remove(r, { recursive: true });
    }
  },
});

Deno.test({
  name: "resolveBinary skips empty and relative PATH entries",
  ignore: Deno.build.os === "windows",
  fn: async () => {
    const r = await makeTree();
    try {
      const cwd = `${r}/bin1`;
      // A relative entry that would reach bin1 from the process's own cwd.
      const up = "../".repeat(Deno.cwd().split("/").filter(Boolean).length);
      const viaProcessCwd = `${up}${r.slice(1)}/bin1`;
      for (const path of ["", ":", ".", "bin1", `:${r}/bin3`, `.:${r}/bin3`, viaProcessCwd]) {
        assert.equal(await resolveBinary("tool", { path, cwd }), null, `PATH=${path}`);
      }
      assert.equal(await resolveBinary("tool", { path: `:${r}/bin2`, cwd }), `${r}/bin2/tool`);
    } finally {
      await Deno.remove(r, { recursive: true });
    }
  },
});

Deno.test("resolveBinary wants an absolute cwd", async () => {
  await assert.rejects(resolveBinary("./x", { path: "/usr/bin", cwd: "relative/dir" }), TypeError);
  await assert.rejects(resolveBinary("ls", { path: "/usr/bin", cwd: "" }), TypeError);
});

// ---------------------------------------------------------------- matchesAllowlist

const PATH_GLOBS: [string, string, boolean][] = [
  // pattern, resolved path, matches
  ["/usr/bin/git", "/usr/bin/git", true],
  ["/usr/bin/gi", "/usr/bin/git", false],
  ["/usr/bin/git", "/usr/bin/git2", false],
  ["/usr/bin/git", "/x/usr/bin/git", false],
  ["/USR/BIN/GIT", "/usr/bin/git", true],
  ["/usr/bin/git", "/Usr/Bin/GIT", true],
  ["/usr/bin/kill", "/usr/bin/\u212Aill", false], // Kelvin sign is not K
  ["/usr/bin/sh", "/usr/bin/\u017Fh", false], // long s is not s
  ["/usr/bin/*", "/usr/bin/git", true],
  ["/usr/bin/*", "/usr/bin/x/git", false],
  ["/usr/*/git", "/usr/bin/git", true],
  ["/usr/*/git", "/usr/local/bin/git", false],
  ["/usr/bin/g*", "/usr/bin/git", true],
  ["/usr/bin/g*", "/usr/bin/xgit", false],
  ["/usr/**/git", "/usr/local/bin/git", true],
  ["/usr/**/git", "/usr/bin/git", true],
  ["/usr/**/git", "/usr/git", true],
  ["/usr/**/git", "/opt/usr/bin/git", false],
  ["/usr/**/git", "/usr/bin/git/x", false],
  ["/usr/**", "/usr/a/b/c", true],
  ["**/git", "/usr/bin/git", true],
  ["/home/**/bin/rg", "/home/u/projects/x/bin/rg", true],
  ["/usr/bin/g?t", "/usr/bin/git", true],
  ["/usr/bin/g?t", "/usr/bin/gt", false],
  ["/usr/bin/g?t", "/usr/bin/g/t", false],
  ["/usr/bin/g??", "/usr/bin/gé", false],
  ["/usr/bin/g?", "/usr/bin/gé", true],
  ["/opt/a.b/tool", "/opt/a.b/tool", true],
  ["/opt/a.b/tool", "/opt/aXb/tool", false],
  ["/opt/c++/bin/g++", "/opt/c++/bin/g++", true],
  ["/opt/c++/bin/g++", "/opt/ccc/bin/g", false],
  ["/opt/(x|y)/t", "/opt/x/t", false],
  ["/opt/(x|y)/t", "/opt/(x|y)/t", true],
  ["/opt/[ab]/t", "/opt/a/t", false],
  ["/opt/[ab]/t", "/opt/[ab]/t", true],
  ["/opt/a{1,2}/t", "/opt/a/t", false],
  ["/opt/a{1,2}/t", "/opt/a{1,2}/t", true],
  ["/opt/\\d/t", "/opt/5/t", false],
  ["/opt/\\d/t", "/opt/\\d/t", true],
  ["/opt/^$/t", "/opt/^$/t", true],
  [".*", "/usr/bin/git", false],
  ["/usr/bin/git|/bin/sh", "/bin/sh", false],
  ["", "", false],
  ["", "/usr/bin/git", false],
];

Deno.test("matchesAllowlist globs the resolved path, case-insensitively and anchored", () => {
  for (const [pattern, path, expected] of PATH_GLOBS) {
    assert.equal(matchesAllowlist(path, [], { pattern }), expected, `${pattern} vs ${path}`);
  }
});

const ARG_GLOBS: [string, string[], boolean][] = [
  // argPattern, args, matches
  ["status", ["status"], true],
  ["status", ["status", "-s"], false],
  ["status*", ["status", "-s"], true],
  ["status *", ["status"], false],
  ["status *", ["status", "--porcelain", "a/b"], true],
  ["log -n ?", ["log", "-n", "5"], true],
  ["log -n ?", ["log", "-n", "10"], false],
  ["", [], true],
  ["", ["x"], false],
  ["STATUS", ["status"], false],
  ["a.b", ["axb"], false],
  ["a.b", ["a.b"], true],
  ["(x|y)", ["x"], false],
  ["*", ["-rf", "/", "line\nbreak"], true],
  ["push origin main", ["push", "origin main"], true],
  ["* --force*", ["push", "--force-with-lease"], true],
  ["* --force*", ["push"], false],
];

Deno.test("matchesAllowlist applies argPattern to the args joined by one space", () => {
  for (const [argPattern, args, expected] of ARG_GLOBS) {
    const entry = { pattern: "/usr/bin/git", argPattern };
    assert.equal(
      matchesAllowlist("/usr/bin/git", args, entry),
      expected,
      `${argPattern} vs ${args}`,
    );
  }
  assert.equal(matchesAllowlist("/usr/bin/git", ["anything"], { pattern: "/usr/bin/git" }), true);
  assert.equal(
    matchesAllowlist("/usr/bin/rm", ["status"], { pattern: "/usr/bin/git", argPattern: "status" }),
    false,
    "the argPattern never rescues a path mismatch",
  );
});

// ---------------------------------------------------------------- displayCommand

Deno.test("displayCommand normalises fullwidth letters and flags it (GHSA-pcqg)", () => {
  assert.deepEqual(displayCommand("ｒｍ -rf /"), {
    text: "rm -rf /",
    normalized: true,
    escapedChars: 0,
  });
  assert.deepEqual(displayCommand(["ｒｍ", "-rf", "/"]), {
    text: "rm -rf /",
    normalized: true,
    escapedChars: 0,
  });
  assert.deepEqual(displayCommand("rm -rf /"), {
    text: "rm -rf /",
    normalized: false,
    escapedChars: 0,
  });
  assert.deepEqual(displayCommand(["rm", "-rf", "/"]).normalized, false);
  assert.equal(displayCommand("ﬁnd .").text, "find .");
  assert.equal(displayCommand("echo a\u00A0b").text, "echo a b", "NBSP becomes a space");
  assert.equal(displayCommand(["echo", "a\u3000b"]).text, "echo 'a b'", "quoted after NFKC");
});

const HIDDEN: [string, string][] = [
  // character, escape shown (after NFKC)
  ["\u200B", "200B"],
  ["\u200C", "200C"],
  ["\u200D", "200D"],
  ["\u200E", "200E"],
  ["\u200F", "200F"],
  ["\u202A", "202A"],
  ["\u202B", "202B"],
  ["\u202C", "202C"],
  ["\u202D", "202D"],
  ["\u202E", "202E"],
  ["\u2066", "2066"],
  ["\u2067", "2067"],
  ["\u2068", "2068"],
  ["\u2069", "2069"],
  ["\u061C", "061C"],
  ["\uFEFF", "FEFF"],
  ["\u00AD", "00AD"],
  ["\u2060", "2060"],
  ["\u180E", "180E"],
  ["\u{E0041}", "E0041"],
  ["\uFE0F", "FE0F"],
  ["\u034F", "034F"],
  ["\u115F", "115F"],
  ["\u3164", "1160"],
  ["\u2800", "2800"],
  ["\u1680", "1680"],
  ["\uE000", "E000"],
  ["\u0378", "0378"],
  ["\uD800", "D800"],
  ["\u2028", "2028"],
  ["\u2029", "2029"],
  ["\x00", "0000"],
  ["\x1B", "001B"],
  ["\t", "0009"],
  ["\n", "000A"],
  ["\r", "000D"],
  ["\x7F", "007F"],
  ["\x85", "0085"],
];

Deno.test("displayCommand escapes invisible, format, control and bidi characters", () => {
  for (const [ch, hex] of HIDDEN) {
    const label = `U+${ch.codePointAt(0)!.toString(16)}`;
    assert.deepEqual(
      displayCommand(`ls a${ch}b`),
      { text: `ls a\\u{${hex}}b`, normalized: ch === "\u3164", escapedChars: 1 },
      label,
    );
    const argv = displayCommand(["ls", `a${ch}b`]);
    assert.equal(argv.text, `ls 'a\\u{${hex}}b'`, label);
    assert.equal(argv.escapedChars, 1, label);
  }
  assert.deepEqual(displayCommand("ls \u202Egnp.exe\u202C"), {
    text: "ls \\u{202E}gnp.exe\\u{202C}",
    normalized: false,
    escapedChars: 2,
  });
  assert.equal(displayCommand("echo \x1B[2J").text, "echo \\u{001B}[2J");
  assert.equal(displayCommand("a\u200B\u200Bb").escapedChars, 2);
  assert.equal(displayCommand(["é", "日本語", "ok"]).escapedChars, 0);
});

Deno.test("displayCommand keeps a shown \\u{…} unambiguous", () => {
  const cases: [string, string][] = [
    ["printf 'a\\n'", "printf 'a\\n'"],
    ["a\\\\b", "a\\\\b"],
    ["echo \\u{200B}", "echo \\\\u{200B}"], // literal text: backslash doubled
    ["echo \\\u200B", "echo \\\\\\u{200B}"], // literal backslash, then a real ZWSP
    ["echo \\\\u{41}", "echo \\\\\\\\u{41}"],
    ["echo \\u", "echo \\u"],
  ];
  for (const [input, text] of cases) assert.equal(displayCommand(input).text, text, input);
  assert.notEqual(displayCommand("x\\u{200B}").text, displayCommand("x\u200B").text);
});

Deno.test("displayCommand quotes argv elements that need it", () => {
  const cases: [string[], string][] = [
    [["ls", "-la", "/tmp/x_y.z"], "ls -la /tmp/x_y.z"],
    [["git", "commit", "-m", "fix it"], "git commit -m 'fix it'"],
    [["echo", ""], "echo ''"],
    [["echo", "it's"], "echo 'it'\\''s'"],
    [["echo", 'say "hi"'], `echo 'say "hi"'`],
    [["echo", "a;b"], "echo 'a;b'"],
    [["echo", "$HOME"], "echo '$HOME'"],
    [["echo", "*"], "echo '*'"],
    [["echo", "a&&b"], "echo 'a&&b'"],
    [["echo", "a\\b"], "echo 'a\\b'"],
    [["echo", "~"], "echo '~'"],
    [["a b"], "'a b'"],
    [["--opt=value", "k:v", "a@b%c+d,e"], "--opt=value k:v a@b%c+d,e"],
  ];
  for (const [argv, text] of cases) {
    assert.equal(displayCommand(argv).text, text, JSON.stringify(argv));
  }
  // Quoting keeps argument boundaries visible.
  assert.notEqual(displayCommand(["a b"]).text, displayCommand(["a", "b"]).text);
});

// ---------------------------------------------------------------- suspicious

Deno.test("suspicious lists what could mislead an approver", () => {
  const cases: [string | string[], string[]][] = [
    ["ls -la", []],
    [["git", "status"], []],
    ["echo a\tb\nc", []],
    ["echo 日本語 é", []],
    ["ｒｍ -rf /", ["fullwidth: U+FF52 U+FF4D become ASCII under NFKC"]],
    [["ｒｍ", "-rf"], ["fullwidth: U+FF52 U+FF4D become ASCII under NFKC"]],
    ["ls && ｒm x", ["fullwidth: U+FF52 become ASCII under NFKC"]],
    ["ﬁnd .", ["compatibility: U+FB01 change under NFKC"]],
    ["e\u0301cho", ["compatibility: the text is not in NFKC form (combining sequences compose)"]],
    ["echo a\u200Bb", ["invisible: U+200B"]],
    ["echo \uFEFF\u2060", ["invisible: U+FEFF U+2060"]],
    ["ls \u202Efdp.exe", ["bidi: U+202E"]],
    ["ls \u2066x\u2069 \u200F", ["bidi: U+2066 U+2069 U+200F"]],
    ["echo \x1B[2J\r", ["control: U+001B U+000D"]],
    ["\u0440m -rf /", ['mixed-script: program name "\u0440m" mixes Cyrillic, Latin']],
    ["ls && \u0441url x", ['mixed-script: program name "\u0441url" mixes Cyrillic, Latin']],
    [["g\u0456t", "x"], ['mixed-script: program name "g\u0456t" mixes Latin, Cyrillic']],
    ["\u0440m $(id)", ['mixed-script: program name "\u0440m" mixes Cyrillic, Latin']],
    ["echo \u0440m", []],
    ["\u0440\u0455", []],
    [
      "ｒm\u200B \u202E",
      [
        "fullwidth: U+FF52 become ASCII under NFKC",
        "invisible: U+200B",
        "bidi: U+202E",
      ],
    ],
  ];
  for (const [input, reasons] of cases) {
    assert.deepEqual(suspicious(input), reasons, JSON.stringify(input));
  }
});

// ---------------------------------------------------------------- sameInvocation

Deno.test("sameInvocation pins binary, args, cwd and env exactly", () => {
  const base: Invocation = {
    binary: "/usr/bin/git",
    args: ["status", "-s"],
    cwd: "/home/u/repo",
    env: { PATH: "/usr/bin", HOME: "/home/u" },
  };
  assert.equal(sameInvocation(base, { ...base }), true);
  assert.equal(sameInvocation(base, { ...base, env: { HOME: "/home/u", PATH: "/usr/bin" } }), true);
  assert.equal(sameInvocation({ ...base, env: {} }, { ...base, env: {} }), true);
  const different: [string, Invocation][] = [
    ["binary", { ...base, binary: "/usr/local/bin/git" }],
    ["fullwidth binary", { ...base, binary: "/usr/bin/ｇit" }],
    ["arg value", { ...base, args: ["status", "-S"] }],
    ["arg count", { ...base, args: ["status"] }],
    ["arg order", { ...base, args: ["-s", "status"] }],
    ["arg split", { ...base, args: ["status -s"] }],
    ["cwd", { ...base, cwd: "/home/u/other" }],
    ["cwd spelling", { ...base, cwd: "/home/u/x/../repo" }],
    ["env value", { ...base, env: { PATH: "/tmp", HOME: "/home/u" } }],
    ["env extra", { ...base, env: { ...base.env, LD_PRELOAD: "/tmp/x.so" } }],
    ["env missing", { ...base, env: { PATH: "/usr/bin" } }],
  ];
  for (const [label, other] of different) {
    assert.equal(sameInvocation(base, other), false, label);
    assert.equal(sameInvocation(other, base), false, label);
  }
  assert.equal(
    sameInvocation({ ...base, env: { "A=B": "C" } }, { ...base, env: { A: "B=C" } }),
    false,
    "key=value joins are not ambiguous",
  );
});
