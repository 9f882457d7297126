/**
 * docs/methods.md, generated from the method table: every method with its
 * scope, a readable summary of its params (from the zod schema, through
 * `z.toJSONSchema`), a note on its result, whether it is always advertised,
 * and then the OpenClaw core methods gw does not advertise, each with its
 * reason.
 *
 * Regenerate with `deno task docs:methods`; `tests/methods_doc_test.ts` fails
 * when the committed file differs from what this renders. To document a
 * method better, add to {@link RESULT_NOTES} or {@link METHOD_NOTES}; to say
 * why an OpenClaw method is left out, add to {@link UNADVERTISED_REASONS}.
 *
 * @module
 */
import { z } from "zod";
import type { MethodDef, MethodScope } from "../server/method.ts";
import { KNOWN_METHOD_SCOPES } from "../protocol/known_methods.ts";

/** Where the generated file lives, relative to the repository root. */
export const METHODS_DOC_PATH = "docs/methods.md";

/** What a method returns, in a line, where the reference alone would not say it well. */
export const RESULT_NOTES: Readonly<Record<string, string>> = {
  "health": "The health snapshot (the same object as hello-ok's `snapshot.health`).",
  "node.list":
    "`{nodes: [{nodeId, displayName, platform, commands, caps, connected, paired, ...}]}`.",
  "node.describe": "One node, as an entry of `node.list`.",
  "node.invoke": "`{ok: true, nodeId, command, payload}`: `payload` is the node's answer.",
  "node.invoke.result": "`{ok: true, matched}`: whether an invocation was waiting for this answer.",
  "browser.request": "The browser route's JSON result as the node returned it. Files the node " +
    "attached are stored in `<state>/media/` and the result's paths point at those copies. A " +
    "browser error comes back as INVALID_REQUEST (4xx) or UNAVAILABLE (5xx) with its message.",
  "update.run": "`{ok, runId, code?, message, result: {status: ok|skipped|error, mode: " +
    '"binary", reason?, before: {version}, after?: {version}, installed?, steps, durationMs}, ' +
    "restart: {ok, delayMs} | null}`. Every outcome is an ok response, as in OpenClaw; `ok` is " +
    "false when nothing was installed and `code` then says why.",
};

/** Longer notes on a method: design decisions and formats. Markdown. */
export const METHOD_NOTES: Readonly<Record<string, string>> = {
  "browser.request": [
    "gw runs no browser of its own. It forwards the request to a connected node that offers the",
    "`browser.proxy` command (OpenClaw's node host, with its browser control on), as",
    '`node.invoke.request {command: "browser.proxy", params: {method, path, query, body,',
    'timeoutMs, profile?, errorEnvelope: "browser-v1"}}`. The node gets `timeoutMs` + 5 s to',
    "answer. With no such node the answer is UNAVAILABLE (`no connected node offers a browser",
    "(browser.proxy)`). With several, `params.node` picks one (its id, a unique id prefix, or its",
    "display name). If the node disconnects before answering, the answer is UNAVAILABLE,",
    "`NODE_DISCONNECTED`, retryable.",
    "",
    "The method is always advertised, because it works as soon as a browser node connects, and",
    "nodes come and go during a gateway's life. A client that reads `features.methods` once at",
    "connect would otherwise never learn of it. gw refuses the routes that only make sense on a",
    'gateway host with its own browser: dashboards and `target: "host"`. It also refuses the',
    "routes OpenClaw refuses over a node proxy (changing persistent profiles) and file-chooser",
    "uploads of gateway files.",
    "",
    "Scope: `write`, as in METHODS.md and gw's scope table. OpenClaw's own browser plugin asks",
    "for `operator.admin`, and its clients hold that scope, so they are accepted.",
  ].join("\n"),
  "update.run": [
    "Off unless `update.enabled` is true and `update.feedUrl` (https only) is set in gw.json.",
    "`update.channel` (default `stable`) replaces `{channel}` in the feed URL. The feed is one",
    "JSON document:",
    "",
    "```json",
    "{",
    '  "version": "0.2.0",',
    '  "notes": "optional",',
    '  "assets": [',
    '    { "target": "x86_64-unknown-linux-gnu", "url": "gw-x86_64-unknown-linux-gnu",',
    '      "sha256": "<64 hex digits>", "size": 81234567 }',
    "  ]",
    "}",
    "```",
    "",
    "`target` is the target triple `Deno.build.target` reports (the names `compile.sh` builds).",
    "`url` may be relative to the feed. `size` is optional. Unknown fields are ignored.",
    "",
    "A newer version (semver precedence) is downloaded into `<exe>.new` beside the running binary",
    "and hashed on the way. A SHA-256 (or size) that differs from the feed's is refused: `.new` is",
    "deleted and nothing else is touched. Otherwise `.new` gets mode 0755 and must answer",
    "`version --json` with the feed's version. Then `<exe>.old` becomes the previous binary, kept",
    "for rollback (`mv <exe>.old <exe>`), and `.new` is renamed over `<exe>` in one atomic step.",
    "Redirects are followed only to https URLs.",
    "",
    "Then gw restarts. Clients get `shutdown {reason, restartExpectedMs}`, the sockets close with",
    "1012, and `gw start` exits with code **75**. A supervisor restarts gw on that code",
    "(systemd `Restart=on-failure` or `always`), and the new binary starts. Without a supervisor,",
    "start gw again yourself.",
    "",
    "It refuses to run from `deno run`/`deno task`. The rule: when the file name of",
    "`Deno.execPath()` is `deno` (or `deno.exe`), that file is the Deno runtime, not a compiled",
    "gw, and is never replaced. Refusals (`disabled`, `not-compiled`, `in-progress`) and failures",
    "(`feed-failed`, `no-asset`, `bad-url`, `download-failed`, `checksum-mismatch`,",
    "`verify-failed`, `swap-failed`) come back as `ok: false` with `code` and `message`. A git",
    "`target` is INVALID_REQUEST.",
    "",
    "The method is always advertised: it can be turned on at run time (`config.patch`), and when",
    "it cannot act it answers with the reason, as OpenClaw's does.",
  ].join("\n"),
};

/**
 * Why gw does not advertise an OpenClaw core method (lib/protocol/known_methods.ts).
 * A method missing here is listed as not implemented yet.
 */
export const UNADVERTISED_REASONS: Readonly<Record<string, string>> = {
  "web.login.start": "Channel login flows by QR code or link (WhatsApp Web and the like). " +
    "No gw channel logs in that way: Telegram uses a bot token (`channels.telegram.botToken`). " +
    "With no flow to start, the method would always fail, so it is left out. OpenClaw leaves " +
    "`web.login.*` out of `features.methods` too.",
  "web.login.wait": "Waits for the flow `web.login.start` began; left out with it (no gw channel " +
    "logs in by QR code or link).",
  "node.pair.request": "OpenClaw removed it in 2026.7: a node's pairing request is filed when it " +
    "connects with its signed device identity (`node.pair.list` shows it, `node.pair.approve` " +
    "answers it), in gw as in OpenClaw.",
  "node.pair.verify": "OpenClaw removed it in 2026.7: a node proves its identity by signing the " +
    "connect challenge on every connect.",
};

/**
 * A method's status when `available` alone does not tell it (a method that
 * is always advertised but needs something to do its work).
 */
export const STATUS_NOTES: Readonly<Record<string, string>> = {
  "browser.request": "works while a node offering `browser.proxy` is connected; " +
    "otherwise UNAVAILABLE",
  "update.run": "off by default; works in a compiled gw with `update.enabled` and " +
    "`update.feedUrl`, otherwise answers `ok: false` with the reason",
};

const NOT_YET = "Not implemented yet.";

/** What the generator reads of a method definition. */
export type DocMethod = Pick<
  MethodDef,
  "name" | "scope" | "summary" | "params" | "available" | "unavailableReason"
>;

const SCOPE_TEXT: Readonly<Record<MethodScope, string>> = {
  none: "any connected client",
  node: "node role only",
  read: "read",
  write: "write",
  admin: "admin",
  approvals: "approvals",
  pairing: "pairing",
  talk: "talk",
};

type Json = Record<string, unknown>;

/** Escape text for a Markdown table cell. */
function cell(s: string): string {
  return s.replace(/\|/g, "\\|").replace(/\r?\n/g, " ");
}

/** A code span that survives backticks inside. */
function code(s: string): string {
  return s.includes("`") ? `\`\` ${s} \`\`` : `\`${s}\``;
}

/** A readable type of a JSON Schema node: `string`, `integer[]`, `"a" \| "b"`, `object {x, y}`. */
export function typeOf(s: unknown, depth = 0): string {
  if (!s || typeof s !== "object") return "any";
  const j = s as Json;
  if ("const" in j) return JSON.stringify(j.const);
  if (Array.isArray(j.enum)) return j.enum.map((v) => JSON.stringify(v)).join(" | ");
  const union = (j.anyOf ?? j.oneOf) as unknown[] | undefined;
  if (Array.isArray(union)) {
    const parts = [...new Set(union.map((u) => typeOf(u, depth)))];
    return parts.join(" | ");
  }
  if ("$ref" in j) return "object";
  const t = j.type;
  if (Array.isArray(t)) return t.join(" | ");
  switch (t) {
    case "array": {
      const inner = typeOf(j.items, depth + 1);
      return inner.includes(" | ") || inner.includes(" ") ? `(${inner})[]` : `${inner}[]`;
    }
    case "object": {
      const props = j.properties && typeof j.properties === "object"
        ? Object.keys(j.properties as Json)
        : [];
      if (props.length > 0) {
        // A discriminator shows its value: `object {kind: "at", at}`.
        const shown = props.slice(0, 6).map((k) => {
          const v = (j.properties as Record<string, Json>)[k];
          return v && "const" in v ? `${k}: ${JSON.stringify(v.const)}` : k;
        }).join(", ");
        return `object {${shown}${props.length > 6 ? ", …" : ""}}`;
      }
      const extra = j.additionalProperties;
      if (extra && typeof extra === "object" && Object.keys(extra).length > 0) {
        return `record<string, ${typeOf(extra, depth + 1)}>`;
      }
      return "object";
    }
    case "string":
    case "number":
    case "integer":
    case "boolean":
    case "null":
      return t;
    default:
      return "any";
  }
}

/** Constraints worth a reader's time: default, range, length, pattern. */
function constraints(j: Json): string[] {
  const out: string[] = [];
  const num = (k: string) => typeof j[k] === "number" ? j[k] as number : undefined;
  const min = num("minimum");
  const max = num("maximum");
  const safe = (n: number | undefined) => n !== undefined && Math.abs(n) < Number.MAX_SAFE_INTEGER;
  if (safe(min) && safe(max)) out.push(`${min}–${max}`);
  else if (safe(min)) out.push(`≥ ${min}`);
  else if (safe(max)) out.push(`≤ ${max}`);
  if (num("exclusiveMinimum") !== undefined) out.push(`> ${num("exclusiveMinimum")}`);
  const minL = num("minLength");
  const maxL = num("maxLength");
  if (minL !== undefined && minL > 1 && maxL !== undefined) out.push(`${minL}–${maxL} chars`);
  else if (maxL !== undefined) out.push(`≤ ${maxL} chars`);
  else if (minL !== undefined && minL > 1) out.push(`≥ ${minL} chars`);
  const minI = num("minItems");
  const maxI = num("maxItems");
  if (minI !== undefined && maxI !== undefined) out.push(`${minI}–${maxI} items`);
  else if (maxI !== undefined) out.push(`≤ ${maxI} items`);
  else if (minI !== undefined) out.push(`≥ ${minI} items`);
  if (typeof j.pattern === "string") out.push(`pattern ${code(j.pattern)}`);
  if ("default" in j) out.push(`default ${code(JSON.stringify(j.default))}`);
  return out;
}

/** The JSON Schema of a method's params (input side), or null when zod cannot render it. */
function paramsSchema(def: DocMethod): Json | null {
  try {
    return z.toJSONSchema(def.params, { io: "input", unrepresentable: "any" }) as Json;
  } catch {
    return null;
  }
}

/** The params section of one method, as Markdown. */
export function renderParams(def: DocMethod): string {
  const j = paramsSchema(def);
  if (!j) return "Params: see the source (the schema has no JSON Schema form).";
  if (j.type !== "object" || !j.properties) return `Params: ${code(typeOf(j))}.`;
  const props = j.properties as Record<string, Json>;
  const required = new Set(Array.isArray(j.required) ? j.required as string[] : []);
  const strict = j.additionalProperties === false;
  const names = Object.keys(props);
  const tail = strict ? "Unknown fields are refused." : "Unknown fields are ignored.";
  if (names.length === 0) return `Params: none. ${tail}`;
  const rows = names.map((name) => {
    const p = props[name]!;
    const limits = constraints(p);
    const notes = [
      ...(typeof p.description === "string" ? [p.description] : []),
      ...(limits.length ? [`(${limits.join(", ")})`] : []),
    ];
    return `| ${code(name)} | ${cell(code(typeOf(p)))} | ${required.has(name) ? "yes" : "no"} | ${
      cell(notes.join(" "))
    } |`;
  });
  return [
    `Params (${tail.toLowerCase().replace(/\.$/, "")}):`,
    "",
    "| Field | Type | Required | Notes |",
    "| --- | --- | --- | --- |",
    ...rows,
  ].join("\n");
}

/** "works", or when and why it is not advertised. */
export function statusOf(def: DocMethod): string {
  const note = STATUS_NOTES[def.name];
  if (note) return note;
  if (!def.available) return "works";
  return `advertised only while it can work; otherwise UNAVAILABLE: ${
    def.unavailableReason ?? "not configured"
  }`;
}

/** The OpenClaw core methods gw does not advertise, sorted, with their reasons. */
export function unadvertised(
  defs: readonly DocMethod[],
): { name: string; scope: MethodScope; reason: string }[] {
  const have = new Set(defs.map((d) => d.name));
  return Object.keys(KNOWN_METHOD_SCOPES).filter((n) => !have.has(n)).sort().map((name) => ({
    name,
    scope: KNOWN_METHOD_SCOPES[name]!,
    reason: UNADVERTISED_REASONS[name] ?? NOT_YET,
  }));
}

/** Render docs/methods.md for `defs` (the method table, channel methods included). */
export function renderMethodsDoc(defs: readonly DocMethod[]): string {
  const out: string[] = [
    "# Methods",
    "",
    "<!-- Generated by `deno task docs:methods` from methods/mod.ts and lib/docs/methods_doc.ts.",
    "     Do not edit by hand: tests/methods_doc_test.ts fails when this file is out of date. -->",
    "",
    "Every method gw implements, in the order `hello-ok.features.methods` lists them, then the",
    "OpenClaw core methods gw does not advertise and why. Scopes: `read` < `write` < `admin`",
    "(admin allows everything; write also allows read and talk); `approvals` and `pairing` are",
    "separate; *node role only* methods are called by nodes. Params come from each method's",
    "schema. Results follow OpenClaw's unless a note says otherwise: see",
    "`shared/protocol/REFERENCE.md` and the recorded transcripts.",
    "",
    "| Method | Scope | Status | Summary |",
    "| --- | --- | --- | --- |",
  ];
  for (const d of defs) {
    out.push(
      `| [${code(d.name)}](#${anchor(d.name)}) | ${SCOPE_TEXT[d.scope]} | ${
        cell(
          STATUS_NOTES[d.name] ?? (d.available ? "advertised only while it can work" : "works"),
        )
      } | ${cell(d.summary)} |`,
    );
  }
  out.push("");
  for (const d of defs) {
    out.push(`## ${d.name}`, "");
    out.push(`${cell(d.summary)}`, "");
    out.push(`- Scope: ${SCOPE_TEXT[d.scope]}`);
    out.push(`- Status: ${statusOf(d)}`);
    out.push(
      `- Result: ${RESULT_NOTES[d.name] ?? "as OpenClaw's (see `shared/protocol/REFERENCE.md`)."}`,
    );
    out.push("", renderParams(d), "");
    const note = METHOD_NOTES[d.name];
    if (note) out.push(note, "");
  }
  const missing = unadvertised(defs);
  out.push("## Not advertised", "");
  if (missing.length === 0) {
    out.push("gw advertises every OpenClaw core method.", "");
  } else {
    out.push(
      "OpenClaw core methods (`shared/protocol/METHODS.md`) gw does not advertise. A call is",
      "checked against the method's own scope, then answered `unknown method` with",
      '`details.code: "METHOD_NOT_IMPLEMENTED"`.',
      "",
      "| Method | Scope | Why not |",
      "| --- | --- | --- |",
    );
    for (const m of missing) {
      out.push(`| ${code(m.name)} | ${SCOPE_TEXT[m.scope]} | ${cell(m.reason)} |`);
    }
    out.push("");
  }
  return out.join("\n");
}

/** The GitHub-style anchor of a heading `name`. */
function anchor(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9 _-]/g, "").replace(/ /g, "-");
}

if (import.meta.main) {
  const { methods } = await import("../../methods/mod.ts");
  const root = new URL("../../", import.meta.url);
  const path = new URL(METHODS_DOC_PATH, root);
  await Deno.writeTextFile(path, renderMethodsDoc(methods));
  console.log(`wrote ${METHODS_DOC_PATH} (${methods.length} methods)`);
}
