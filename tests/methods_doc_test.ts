/**
 * docs/methods.md is generated from the method table; this keeps the
 * committed file equal to what the generator renders now, and checks what
 * the generator says about params, status and the methods gw leaves out.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import { methods } from "../methods/mod.ts";
import { KNOWN_METHOD_SCOPES } from "../lib/protocol/known_methods.ts";
import { defineMethod } from "../lib/server/method.ts";
import {
  METHODS_DOC_PATH,
  renderMethodsDoc,
  renderParams,
  statusOf,
  typeOf,
  unadvertised,
  UNADVERTISED_REASONS,
} from "../lib/docs/methods_doc.ts";

const ROOT = new URL("../", import.meta.url);

Deno.test("docs/methods.md is up to date with the method table", async () => {
  const want = renderMethodsDoc(methods);
  let have = "";
  try {
    have = await Deno.readTextFile(new URL(METHODS_DOC_PATH, ROOT));
  } catch { /* missing: reported below */ }
  if (have === want) return;
  const a = have.split("\n");
  const b = want.split("\n");
  let i = 0;
  while (i < Math.max(a.length, b.length) && a[i] === b[i]) i++;
  assert.fail(
    `${METHODS_DOC_PATH} is out of date: run \`deno task docs:methods\` and commit the result.\n` +
      `First difference at line ${i + 1}:\n  committed: ${JSON.stringify(a[i] ?? "<end>")}\n` +
      `  generated: ${JSON.stringify(b[i] ?? "<end>")}`,
  );
});

Deno.test("the doc lists every method once, with its scope, and web.login.* as not advertised", () => {
  const doc = renderMethodsDoc(methods);
  for (const m of methods) {
    const headings = doc.split("\n").filter((l) => l === `## ${m.name}`);
    assert.equal(headings.length, 1, `one section for ${m.name}`);
  }
  assert.match(doc, /\| \[`browser\.request`\]\(#browserrequest\) \| write \| works while/);
  assert.match(doc, /\| \[`update\.run`\]\(#updaterun\) \| admin \| off by default/);
  const names = methods.map((m) => m.name);
  for (const m of ["web.login.start", "web.login.wait"]) {
    assert.equal(names.includes(m), false, `${m} must not be advertised`);
    const row = doc.split("\n").find((l) => l.startsWith(`| \`${m}\` |`));
    assert.ok(row, `${m} is in the not-advertised table`);
    assert.match(row!, /QR code or link/);
  }
});

Deno.test("the not-advertised list is computed from the reference, and its reasons are data", () => {
  const list = unadvertised(methods);
  const names = new Set(methods.map((m) => m.name));
  assert.deepEqual(
    list.map((m) => m.name),
    Object.keys(KNOWN_METHOD_SCOPES).filter((n) => !names.has(n)).sort(),
  );
  for (const m of list) assert.equal(m.scope, KNOWN_METHOD_SCOPES[m.name]);
  // A reason for a method gw now advertises, or for one outside the reference, is stale.
  for (const name of Object.keys(UNADVERTISED_REASONS)) {
    assert.ok(name in KNOWN_METHOD_SCOPES, `${name}: not an OpenClaw core method`);
    assert.equal(
      names.has(name),
      false,
      `${name} is advertised: drop its UNADVERTISED_REASONS entry`,
    );
  }
  // A method missing from both lists gets the default reason.
  const fewer = methods.filter((m) => m.name !== "health");
  const health = unadvertised(fewer).find((m) => m.name === "health");
  assert.deepEqual(health, { name: "health", scope: "none", reason: "Not implemented yet." });
});

Deno.test("params render from the zod schema: names, types, required, constraints", () => {
  const def = defineMethod({
    name: "demo.run",
    scope: "write",
    summary: "A demo.",
    params: z.strictObject({
      id: z.string().min(1).max(64).describe("Which one."),
      limit: z.int().min(1).max(50).default(10),
      mode: z.enum(["a", "b"]).optional(),
      tags: z.array(z.string()).max(8).optional(),
      when: z.union([z.strictObject({ kind: z.literal("at"), at: z.string() }), z.null()]),
      pattern: z.string().regex(/^x|y$/).optional(),
    }),
    available: () => false,
    unavailableReason: "demo is not configured",
    handler: () => ({}),
  });
  const md = renderParams(def);
  assert.match(md, /^Params \(unknown fields are refused\):/);
  assert.match(md, /\| `id` \| `string` \| yes \| Which one\. \(≤ 64 chars\) \|/);
  assert.match(md, /\| `limit` \| `integer` \| no \| \(1–50, default `10`\) \|/);
  assert.match(md, /\| `mode` \| `"a" \\\| "b"` \| no \|/);
  assert.match(md, /\| `tags` \| `string\[\]` \| no \| \(≤ 8 items\) \|/);
  assert.match(md, /\| `when` \| `object \{kind: "at", at\} \\\| null` \| yes \|/);
  assert.match(md, /pattern `\^x\\\|y\$`/, "a pipe in a table cell is escaped");
  assert.equal(
    statusOf(def),
    "advertised only while it can work; otherwise UNAVAILABLE: demo is not configured",
  );
  assert.equal(statusOf(methods.find((m) => m.name === "health")!), "works");
  const loose = defineMethod({
    name: "demo.get",
    scope: "read",
    summary: "Another.",
    params: z.looseObject({}),
    handler: () => ({}),
  });
  assert.equal(renderParams(loose), "Params: none. Unknown fields are ignored.");
  assert.equal(
    typeOf({ type: "object", additionalProperties: { type: "string" } }),
    "record<string, string>",
  );
  assert.equal(
    typeOf({ type: "array", items: { anyOf: [{ type: "string" }, { type: "integer" }] } }),
    "(string | integer)[]",
  );
  assert.equal(typeOf({}), "any");
});
