/**
 * Exec approvals through a real gateway: the policy, the flow, pinning,
 * grants that expire, fallbacks, refusals, spoofed text, and the agent's exec
 * tool waiting for a person (fake Anthropic API, real SDK, real sandbox).
 */
import assert from "node:assert/strict";
import { type AnyFrame, connected, err, ok, type RawClient, startTestGateway } from "./_helpers.ts";
import { startFakeAnthropic } from "./_fake_anthropic.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function setPolicy(c: RawClient, patch: (f: AnyFrame) => void) {
  const cur = await ok(c, "exec.approvals.get");
  const file = structuredClone(cur.file);
  patch(file);
  return await ok(c, "exec.approvals.set", { file, baseHash: cur.hash });
}

Deno.test("the default policy asks about everything; set is compare-and-set on baseHash", async () => {
  await using t = await startTestGateway();
  const c = await connected(t.url);
  const p = await ok(c, "exec.approvals.get");
  assert.equal(p.exists, false);
  assert.deepEqual(p.file.defaults, { security: "allowlist", ask: "on-miss", askFallback: "deny" });
  const set = await ok(c, "exec.approvals.set", {
    file: { ...p.file, defaults: { ...p.file.defaults, ask: "always" } },
    baseHash: p.hash,
  });
  assert.notEqual(set.hash, p.hash);
  const stale = await err(c, "exec.approvals.set", { file: p.file, baseHash: p.hash });
  assert.equal(stale.details.code, "CONFLICT");
  const bad = await err(c, "exec.approvals.set", {
    file: { ...p.file, defaults: { security: "yolo" } },
    baseHash: set.hash,
  });
  assert.match(bad.message, /params\.file\.defaults\.security/);
  await c.close();
});

Deno.test("allow-once answers one request; the same argv asks again; other args ask again", async () => {
  await using t = await startTestGateway();
  const admin = await connected(t.url);
  const reader = await connected(t.url, { scopes: ["operator.read"] });
  const r1 = await ok(admin, "exec.approval.request", { commandArgv: ["echo", "hi"], cwd: "/tmp" });
  assert.equal(r1.status, "pending");
  assert.equal(r1.request.binary.endsWith("/echo"), true);
  const ev = await admin.next((f) =>
    f.event === "exec.approval.requested" && f.payload.id === r1.id
  );
  assert.equal(ev.payload.request.command, `${r1.request.binary} hi`);
  await sleep(50);
  assert.ok(
    !reader.frames.some((f) => f.event === "exec.approval.requested"),
    "read scope sees no approvals",
  );
  await ok(admin, "exec.approval.resolve", { id: r1.id, decision: "allow-once" });
  const w = await ok(admin, "exec.approval.waitDecision", { id: r1.id, timeoutMs: 100 });
  assert.equal(w.decision, "allow-once");
  const r2 = await ok(admin, "exec.approval.request", { commandArgv: ["echo", "hi"], cwd: "/tmp" });
  assert.equal(r2.status, "pending", "allow-once is not a grant");
  await ok(admin, "exec.approval.resolve", { id: r2.id, decision: "allow-always" });
  assert.equal(
    (await ok(admin, "exec.approval.request", { commandArgv: ["echo", "hi"], cwd: "/tmp" })).status,
    "allowed",
  );
  assert.equal(
    (await ok(admin, "exec.approval.request", { commandArgv: ["echo", "hi", "there"] })).status,
    "pending",
  );
  assert.equal(
    (await ok(admin, "exec.approval.request", { commandArgv: ["echo", "*"] })).status,
    "pending",
  );
  // A second answer to a decided request: not found.
  assert.equal(
    (await err(admin, "exec.approval.resolve", { id: r2.id, decision: "deny" })).code,
    "APPROVAL_NOT_FOUND",
  );
  assert.equal(
    (await err(admin, "exec.approval.waitDecision", { id: "nope" })).code,
    "APPROVAL_NOT_FOUND",
  );
  await reader.close();
  await admin.close();
});

Deno.test("an allow-always grant with a TTL expires", async () => {
  await using t = await startTestGateway();
  const c = await connected(t.url);
  const r = await ok(c, "exec.approval.request", { commandArgv: ["true"] });
  await ok(c, "exec.approval.resolve", { id: r.id, decision: "allow-always", ttlMs: 1000 });
  assert.equal((await ok(c, "exec.approval.request", { commandArgv: ["true"] })).status, "allowed");
  await sleep(1100);
  assert.equal((await ok(c, "exec.approval.request", { commandArgv: ["true"] })).status, "pending");
  await c.close();
});

Deno.test("deny, and the timeout falls back to askFallback", async () => {
  await using t = await startTestGateway();
  const c = await connected(t.url);
  const r = await ok(c, "exec.approval.request", { commandArgv: ["true"] });
  await ok(c, "exec.approval.resolve", { id: r.id, decision: "deny" });
  assert.equal((await ok(c, "exec.approval.waitDecision", { id: r.id })).decision, "deny");
  const slow = await ok(c, "exec.approval.request", { commandArgv: ["true"], timeoutMs: 1000 });
  const d = await ok(c, "exec.approval.waitDecision", { id: slow.id, timeoutMs: 3000 });
  assert.equal(d.decision, "deny");
  assert.match(d.decidedBy, /timeout \(askFallback deny\)/);
  await setPolicy(c, (f) => f.defaults.askFallback = "full");
  const lenient = await ok(c, "exec.approval.request", { commandArgv: ["true"], timeoutMs: 1000 });
  assert.equal(
    (await ok(c, "exec.approval.waitDecision", { id: lenient.id, timeoutMs: 3000 })).decision,
    "allow-once",
  );
  // security deny refuses without asking; full allows without asking.
  await setPolicy(c, (f) => f.defaults.security = "deny");
  assert.equal((await ok(c, "exec.approval.request", { commandArgv: ["true"] })).status, "denied");
  await setPolicy(c, (f) => {
    f.defaults.security = "full";
    f.defaults.ask = "off";
  });
  assert.equal((await ok(c, "exec.approval.request", { commandArgv: ["true"] })).status, "allowed");
  await c.close();
});

Deno.test("shell features and unknown binaries are refused; spoofed text is shown escaped", async () => {
  await using t = await startTestGateway();
  const c = await connected(t.url);
  for (
    const [command, reason] of [
      ["echo hi > /tmp/x", "redirection"],
      ["ls && rm -rf /", "chain"],
      ["echo $(id)", "substitution"],
      ["echo `id`", "backticks"],
    ]
  ) {
    const e = await err(c, "exec.approval.request", { command });
    assert.equal(e.details.code, "COMMAND_REFUSED", command);
    assert.equal(e.details.reason, reason, command);
  }
  // Fullwidth letters are not the binary they look like.
  const fw = await err(c, "exec.approval.request", { command: "ｅｃｈｏ hi" });
  assert.equal(fw.details.code, "COMMAND_NOT_FOUND");
  // A right-to-left override in an argument is escaped in what a person sees.
  const r = await ok(c, "exec.approval.request", { commandArgv: ["echo", "invoice\u202Egnp.exe"] });
  assert.ok(r.request.command.includes("\\u{202E}"), r.request.command);
  assert.ok(!r.request.command.includes("\u202E"));
  assert.ok(r.warnings.some((w: string) => w.startsWith("bidi")), JSON.stringify(r.warnings));
  await c.close();
});

Deno.test("the agent's exec tool waits for a person: allowed runs in the sandbox, denied comes back as a tool result", async () => {
  const fake = await startFakeAnthropic({ apiKey: "k" });
  await using t = await startTestGateway({
    config: {
      agents: { defaults: { model: "anthropic/claude-sonnet-4-6" } },
      models: { providers: { anthropic: { apiKey: "k", baseUrl: fake.url } } },
    },
  });
  try {
    // Turn 1: the model runs echo; a person allows it; the output goes back to the model.
    fake.script(
      { blocks: [{ type: "tool_use", name: "exec", input: { argv: ["echo", "from-the-agent"] } }] },
      { blocks: [{ type: "text", text: "done" }] },
      { blocks: [{ type: "tool_use", name: "exec", input: { argv: ["echo", "again"] } }] },
      { blocks: [{ type: "text", text: "ok, not run" }] },
    );
    const c = await connected(t.url);
    await ok(c, "chat.send", { sessionKey: "main", message: "say hi", idempotencyKey: "x1" });
    const ask = await c.next((f) => f.event === "exec.approval.requested", 10_000);
    assert.equal(ask.payload.sessionKey, "agent:main:main");
    await ok(c, "exec.approval.resolve", { id: ask.payload.id, decision: "allow-once" });
    const fin = await c.next(
      (f) => f.event === "chat" && f.payload.runId === "x1" && f.payload.state !== "delta",
      10_000,
    );
    assert.equal(fin.payload.state, "final");
    const toolResult = JSON.stringify(fake.requests[1]!.body.messages);
    assert.match(toolResult, /exit 0/);
    assert.match(toolResult, /from-the-agent/);
    // Turn 2: denied; the model is told, the turn still ends normally.
    await ok(c, "chat.send", { sessionKey: "main", message: "again", idempotencyKey: "x2" });
    const ask2 = await c.next(
      (f) => f.event === "exec.approval.requested" && f.payload.id !== ask.payload.id,
      10_000,
    );
    await ok(c, "exec.approval.resolve", { id: ask2.payload.id, decision: "deny" });
    const fin2 = await c.next(
      (f) => f.event === "chat" && f.payload.runId === "x2" && f.payload.state !== "delta",
      10_000,
    );
    assert.equal(fin2.payload.state, "final");
    assert.match(JSON.stringify(fake.requests[3]!.body.messages), /denied by/);
    await c.close();
  } finally {
    await fake.close();
  }
});

Deno.test("under gw's own permission set (deno task start), an approved command runs in the sandbox", async () => {
  const { GwChild } = await import("./_gw_child.ts");
  const fake = await startFakeAnthropic({ apiKey: "k" });
  const stateDir = await Deno.makeTempDir({ prefix: "gw-exec-" });
  await Deno.writeTextFile(
    `${stateDir}/gw.json`,
    JSON.stringify({
      agents: { defaults: { model: "anthropic/claude-sonnet-4-6" } },
      models: { providers: { anthropic: { apiKey: "k", baseUrl: fake.url } } },
    }),
  );
  await using gw = await GwChild.start(stateDir);
  try {
    fake.script(
      { blocks: [{ type: "tool_use", name: "exec", input: { argv: ["uname", "-s"] } }] },
      { blocks: [{ type: "text", text: "done" }] },
    );
    const c = await connected(gw.url);
    await ok(c, "chat.send", { sessionKey: "main", message: "which os?", idempotencyKey: "p1" });
    const ask = await c.next((f) => f.event === "exec.approval.requested", 15_000);
    await ok(c, "exec.approval.resolve", { id: ask.payload.id, decision: "allow-once" });
    const fin = await c.next(
      (f) => f.event === "chat" && f.payload.runId === "p1" && f.payload.state !== "delta",
      15_000,
    );
    assert.equal(fin.payload.state, "final");
    const sent = JSON.stringify(fake.requests[1]!.body.messages);
    assert.match(sent, /exit 0/, sent);
    assert.match(sent, new RegExp(Deno.build.os === "linux" ? "Linux" : "Darwin"));
    await c.close();
  } finally {
    await fake.close();
  }
});
