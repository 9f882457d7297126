/**
 * The Control UI's Chat page in headless Chromium, against a real gateway
 * whose model is the fake Anthropic API (tests/_fake_anthropic.ts): a reply
 * that streams (at least two deltas render before the final), thinking and a
 * tool call collapsed, the sessions list with derived titles and search,
 * abort, a new session, history after a reload, and 360 px without sideways
 * scrolling. Screenshots (GW_UI_SCREENSHOTS=1): chat-phone, chat-desktop.
 */
import assert from "node:assert/strict";
import { type FakeAnthropic, startFakeAnthropic } from "./_fake_anthropic.ts";
import { type Page, screenshot, SIZES, startUi, UI_TEST, type UiHarness } from "./_browser.ts";

// page.evaluate callbacks run in the browser: its globals, for the type checker only.
// deno-lint-ignore no-explicit-any
declare const document: any, MutationObserver: any;

/** The model config of tests/telegram_test.ts: the default model on the fake. */
function agentConfig(fake: FakeAnthropic): Record<string, unknown> {
  return {
    agents: { defaults: { model: "anthropic/claude-sonnet-4-6" } },
    models: { providers: { anthropic: { apiKey: "k-test", baseUrl: fake.url } } },
  };
}

/** A gateway on the fake model and a browser; `await using` closes all. */
async function chatUi(): Promise<
  { ui: UiHarness; fake: FakeAnthropic } & AsyncDisposable
> {
  const fake = await startFakeAnthropic({ apiKey: "k-test" });
  let ui: UiHarness;
  try {
    ui = await startUi({ config: agentConfig(fake) });
  } catch (e) {
    await fake.close();
    throw e;
  }
  return {
    ui,
    fake,
    async [Symbol.asyncDispose]() {
      await ui.close();
      await fake.close();
    },
  };
}

/** Open the page logged in, on the chat, ready to type. */
async function chatPage(ui: UiHarness, size = SIZES.desktop): Promise<Page> {
  const page = await ui.page(size);
  await ui.login(page);
  await ui.goto(page, "chat");
  await page.waitForSelector('[data-testid="chat-input"]');
  await page.waitForSelector(
    '[data-testid="messages"] [data-testid="empty-chat"], ' +
      '[data-testid="messages"] [data-testid="message"]',
  );
  return page;
}

/**
 * Record every text the streaming reply shows (in the page, as it renders),
 * to read back with the returned function.
 */
async function recordStreaming(page: Page): Promise<() => Promise<string[]>> {
  await page.evaluate(() => {
    const w = globalThis as unknown as { __seen: string[] };
    w.__seen = [];
    const box = document.querySelector('[data-testid="messages"]');
    const look = () => {
      const el = box.querySelector(
        '[data-testid="message"][data-state="streaming"] .body .text',
      );
      const text = el?.textContent ?? "";
      if (text && w.__seen[w.__seen.length - 1] !== text) w.__seen.push(text);
    };
    new MutationObserver(look).observe(box, {
      subtree: true,
      childList: true,
      characterData: true,
      attributes: true,
    });
  });
  return () => page.evaluate(() => (globalThis as unknown as { __seen: string[] }).__seen);
}

/** Type a message and send it with Enter. */
async function send(page: Page, text: string): Promise<void> {
  await page.fill('[data-testid="chat-input"]', text);
  await page.press('[data-testid="chat-input"]', "Enter");
}

/** The last assistant message's text, once it is in `state`. */
async function lastReply(page: Page, state: string, timeout = 15_000): Promise<string> {
  const sel = `[data-testid="message"][data-role="assistant"][data-state="${state}"]`;
  await page.waitForSelector(sel, { timeout });
  return (await page.locator(sel).last().locator(".body").textContent()) ?? "";
}

Deno.test({
  name: "UI chat: a reply streams in (deltas before final), thinking and tools collapsed",
  ...UI_TEST,
  async fn(t) {
    await using env = await chatUi();
    const { ui, fake } = env;
    const page = await chatPage(ui);

    await t.step("the reply renders piece by piece, then as final", async () => {
      fake.script({
        blocks: [
          { type: "thinking", thinking: ["The person ", "greets me."], signature: "sig-1" },
          { type: "text", text: ["Hello", " there,", " nice to", " meet you!"] },
        ],
        delayMs: 250,
      });
      const seen = await recordStreaming(page);
      await send(page, "Hi! Please greet me back.");
      // The person's message shows at once.
      await page.waitForSelector(
        '[data-testid="message"][data-role="user"] >> text=Hi! Please greet me back.',
      );
      const final = await lastReply(page, "final");
      assert.match(final, /Hello there, nice to meet you!/);
      const partial = (await seen()).filter((s) => s !== "Hello there, nice to meet you!");
      assert.ok(
        partial.length >= 2,
        `at least two deltas before the final: ${JSON.stringify(partial)}`,
      );
      for (const p of partial) assert.ok("Hello there, nice to meet you!".startsWith(p), p);
      assert.equal(fake.requests.length, 1);
      // Send is back, Stop is gone.
      assert.equal(await page.isVisible('[data-testid="abort"]'), false);
      assert.equal(await page.isVisible('[data-testid="send"]'), true);
    });

    await t.step("the thinking is there, collapsed", async () => {
      const reply = page.locator('[data-testid="message"][data-role="assistant"]').last();
      const details = reply.locator('details[data-testid="thinking"]');
      assert.equal(await details.count(), 1);
      assert.equal(await details.evaluate((d: { open: boolean }) => d.open), false);
      assert.equal(await details.locator("pre").isVisible(), false);
      await details.locator("summary").click();
      assert.match((await details.locator("pre").textContent())!, /The person greets me\./);
    });

    await t.step("a tool call and its result show collapsed", async () => {
      fake.script(
        {
          blocks: [{ type: "tool_use", name: "calculate", input: { expression: "6*7" } }],
          delayMs: 30,
        },
        { blocks: [{ type: "text", text: ["It is ", "42."] }], delayMs: 30 },
      );
      await send(page, "What is 6 times 7?");
      await page.waitForFunction(() =>
        [...document.querySelectorAll('[data-testid="message"][data-role="assistant"]')]
          .some((m: { textContent: string; dataset: { state: string } }) =>
            m.dataset.state === "final" && m.textContent.includes("It is 42.")
          )
      );
      const tool = page.locator('details[data-testid="tool"]').last();
      await tool.waitFor({ state: "attached" });
      assert.match((await tool.locator("summary").textContent())!, /calculate/);
      assert.equal(await tool.evaluate((d: { open: boolean }) => d.open), false);
      const inside = (await tool.textContent())!;
      assert.match(inside, /6\*7/);
      assert.match(inside, /42/);
    });

    await t.step("after a reload the history shows the same conversation", async () => {
      await page.reload();
      await ui.waitConn(page, "connected");
      await page.waitForSelector('[data-testid="message"][data-role="assistant"]');
      const texts = await page.locator('[data-testid="message"]').allTextContents();
      const all = texts.join("\n");
      assert.match(all, /Hi! Please greet me back\./);
      assert.match(all, /Hello there, nice to meet you!/);
      assert.match(all, /It is 42\./);
      // Thinking and tool calls from history are collapsed too.
      assert.ok((await page.locator('details[data-testid="thinking"]').count()) >= 1);
      assert.ok((await page.locator('details[data-testid="tool"]').count()) >= 1);
      const open = await page.locator("details[open]").count();
      assert.equal(open, 0);
    });

    await t.step("the session is listed with its derived title", async () => {
      const item = page.locator('[data-testid="session-item"]');
      await item.first().waitFor();
      assert.equal(await item.count(), 1);
      const title = (await item.first().locator(".title").textContent())!;
      assert.match(title, /Hi! Please greet me back/);
      assert.equal(await item.first().getAttribute("aria-current"), "true");
      assert.equal(await page.textContent('[data-testid="chat-title"]'), title);
    });
  },
});

Deno.test({
  name: "UI chat: Stop aborts the running reply; New chat starts a session; search finds it",
  ...UI_TEST,
  async fn(t) {
    await using env = await chatUi();
    const { ui, fake } = env;
    const page = await chatPage(ui);

    await t.step("Stop aborts a reply mid-stream", async () => {
      fake.script({
        blocks: [{ type: "text", text: Array.from({ length: 40 }, (_, i) => `word${i} `) }],
        delayMs: 250,
      });
      await send(page, "Tell me a very long story about lighthouses");
      await page.waitForSelector('[data-testid="abort"]', { state: "visible" });
      await page.waitForFunction(() =>
        (document.querySelector('[data-state="streaming"] .body .text')?.textContent ?? "")
          .includes("word1 ")
      );
      await page.click('[data-testid="abort"]');
      const text = await lastReply(page, "aborted");
      assert.match(text, /word0/);
      assert.doesNotMatch(text, /word39/);
      await page.waitForSelector('[data-testid="send"]', { state: "visible" });
      assert.equal(await page.isVisible('[data-testid="abort"]'), false);
      assert.equal(await fake.requests[0]!.ended, "disconnected", "the model stream was cancelled");
    });

    await t.step(
      "New chat opens an empty session; a message there makes a second session",
      async () => {
        const before = (await page.textContent('[data-testid="chat-title"]'))!;
        await page.click('[data-testid="new-session"]');
        await page.waitForSelector('[data-testid="empty-chat"]');
        const title = (await page.textContent('[data-testid="chat-title"]'))!;
        assert.notEqual(title, before);
        assert.match(title, /^ui-/);
        assert.equal(await page.locator('[data-testid="message"]').count(), 0);

        fake.script({ blocks: [{ type: "text", text: ["Bonjour", " !"] }], delayMs: 20 });
        await send(page, "Say hello in French");
        assert.match(await lastReply(page, "final"), /Bonjour !/);
        const items = page.locator('[data-testid="session-item"]');
        await page.waitForFunction(() =>
          document.querySelectorAll('[data-testid="session-item"]').length === 2
        );
        assert.match((await items.first().textContent())!, /Say hello in French/);
        // The model saw only this session's message, not the first session's.
        const body = fake.requests.at(-1)!.body as { messages: unknown[] };
        assert.equal(body.messages.length, 1);
      },
    );

    await t.step("search narrows the list; a session opens from it with its history", async () => {
      await page.fill('[data-testid="session-search"]', "lighthouses");
      await page.waitForFunction(() =>
        document.querySelectorAll('[data-testid="session-item"]').length === 1
      );
      const item = page.locator('[data-testid="session-item"]').first();
      assert.match((await item.textContent())!, /lighthouses/);
      await item.click();
      await page.waitForSelector('[data-testid="message"][data-role="user"] >> text=lighthouses');
      await page.fill('[data-testid="session-search"]', "no such thing at all");
      await page.waitForSelector('[data-testid="session-list"] >> text=No session matches.');
      await page.fill('[data-testid="session-search"]', "");
      await page.waitForFunction(() =>
        document.querySelectorAll('[data-testid="session-item"]').length === 2
      );
    });
  },
});

Deno.test({
  name: "UI chat at 360 px: no sideways scrolling, sessions behind a toggle; screenshots",
  ...UI_TEST,
  async fn() {
    await using env = await chatUi();
    const { ui, fake } = env;
    const width = (page: Page) =>
      page.evaluate(() => document.scrollingElement.scrollWidth as number);

    const phone = await chatPage(ui, SIZES.phone);
    fake.script({
      blocks: [
        { type: "thinking", thinking: ["Short question; short answer."], signature: "s" },
        {
          type: "text",
          text: [
            "A lighthouse keeper tends the light. Long unbroken text must wrap too: ",
            "https://example.invalid/" + "a".repeat(160),
          ],
        },
      ],
      delayMs: 20,
    });
    await send(phone, "What does a lighthouse keeper do? " + "x".repeat(120));
    await lastReply(phone, "final");
    assert.ok((await width(phone)) <= 360, `chat: ${await width(phone)} px`);
    await screenshot(phone, "chat-phone");

    await phone.click('[data-testid="sessions-toggle"]');
    await phone.waitForSelector('[data-testid="session-item"]', { state: "visible" });
    assert.ok((await width(phone)) <= 360, `sessions: ${await width(phone)} px`);
    await phone.click('[data-testid="session-item"]');
    await phone.waitForSelector('[data-testid="chat-input"]', { state: "visible" });

    const desktop = await chatPage(ui, SIZES.desktop);
    fake.script(
      {
        blocks: [
          { type: "thinking", thinking: ["Height times two, exactly."], signature: "s" },
          { type: "tool_use", name: "calculate", input: { expression: "2 * 34.5" } },
        ],
        delayMs: 10,
      },
      {
        blocks: [{ type: "text", text: ["Twice the lighthouse's height ", "is 69 m."] }],
        delayMs: 10,
      },
    );
    await desktop.click('[data-testid="new-session"]');
    await desktop.waitForSelector('[data-testid="empty-chat"]');
    await send(desktop, "The lighthouse is 34.5 m tall. How much is twice that?");
    await lastReply(desktop, "final");
    await screenshot(desktop, "chat-desktop");
  },
});
