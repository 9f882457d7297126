/**
 * Chat and agent turns end to end: a real gateway, the real Anthropic SDK,
 * and the fake Anthropic API.
 */
import assert from "node:assert/strict";
import { type AnyFrame, connected, ok, startTestGateway } from "./_helpers.ts";
import { startFakeAnthropic } from "./_fake_anthropic.ts";

async function setup() {
  const fake = await startFakeAnthropic({ apiKey: "k-test" });
  const t = await startTestGateway({
    config: {
      agents: { defaults: { model: "anthropic/claude-sonnet-4-6" } },
      models: { providers: { anthropic: { apiKey: "k-test", baseUrl: fake.url } } },
    },
  });
  return {
    fake,
    t,
    async [Symbol.asyncDispose]() {
      await t.stop();
      await fake.close();
    },
  };
}

Deno.test("chat.send streams deltas then final, and history keeps both messages", async () => {
  await using env = await setup();
  env.fake.script({ blocks: [{ type: "text", text: ["Hel", "lo ", "there"] }], delayMs: 30 });
  const c = await connected(env.t.url);
  const ack = await ok(c, "chat.send", {
    sessionKey: "main",
    message: "hi",
    idempotencyKey: "run-1",
  });
  assert.deepEqual(ack, { runId: "run-1", status: "started" });
  const final = await c.next((f) => f.event === "chat" && f.payload.state === "final", 5000);
  assert.equal(final.payload.message.content[0].text, "Hello there");
  const hist = await ok(c, "chat.history", { sessionKey: "agent:main:main" });
  assert.deepEqual(hist.messages.map((m: AnyFrame) => m.role), ["user", "assistant"]);
  assert.equal(hist.messages[0].content, "hi");
  await c.close();
});
