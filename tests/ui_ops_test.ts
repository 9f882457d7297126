/**
 * The Control UI's operations pages in headless Chromium against a real
 * gateway: approvals (a node's system.run approved in the page), devices
 * (a pairing request approved in the page, a token revoked), channels (none,
 * then Telegram against the Bot API server of tests/_telegram_api.ts), usage
 * (the chart after a chat turn with the fake Anthropic API) and logs (new
 * lines, filters, following, the bounded view). With GW_UI_SCREENSHOTS=1 it
 * saves docs/screenshots/<page>-phone.png and <page>-desktop.png.
 */
import assert from "node:assert/strict";
import {
  consoleErrors,
  type Page,
  screenshot,
  SIZES,
  startUi,
  UI_TEST,
  type UiHarness,
} from "./_browser.ts";
import {
  type AnyFrame,
  connected,
  connectParams,
  ok,
  RawClient,
  signedConnected,
  TEST_TOKEN,
  until,
} from "./_helpers.ts";
import { startFakeAnthropic } from "./_fake_anthropic.ts";
import { TelegramApi } from "./_telegram_api.ts";
import { DeviceIdentity } from "../lib/client/identity.ts";

/** A logged-in page of `ui` at `size`, on page `id`. */
async function openPage(
  ui: UiHarness,
  id: string,
  size: { width: number; height: number } = SIZES.desktop,
): Promise<Page> {
  const page = await ui.page(size);
  await ui.login(page);
  await ui.goto(page, id);
  return page;
}

/** Both screenshot sizes of page `id`: the desktop page given, and a fresh phone-sized one. */
async function screenshots(ui: UiHarness, desktop: Page, id: string, ready: string) {
  await desktop.waitForSelector(ready);
  await screenshot(desktop, `${id}-desktop`);
  const phone = await openPage(ui, id, SIZES.phone);
  await phone.waitForSelector(ready);
  await screenshot(phone, `${id}-phone`);
  assert.deepEqual(consoleErrors(phone), []);
  await phone.context().close();
}

// ------------------------------------------------------------------ a node

/** The path of `name` on PATH, as a node's system.which answers. */
async function which(name: string): Promise<string | null> {
  for (const dir of (Deno.env.get("PATH") ?? "/usr/bin:/bin").split(":")) {
    try {
      if ((await Deno.stat(`${dir}/${name}`)).isFile) return `${dir}/${name}`;
    } catch { /* not here */ }
  }
  return null;
}

/**
 * A node over the protocol: a signed device with role `node` (paired
 * silently on loopback with the shared token) that answers
 * `node.invoke.request` for system.which and system.run by really running
 * the approved binary.
 */
async function startNode(url: string): Promise<{ c: RawClient; nodeId: string; ran: string[][] }> {
  const c = await signedConnected(url, {
    role: "node",
    scopes: [],
    client: {
      id: "node-host",
      version: "test",
      platform: "linux",
      mode: "node",
      displayName: "ops-node",
    },
    commands: ["system.run", "system.which"],
  });
  const hello = c.frames.find((f) => f.id === "connect").payload;
  const nodeId = hello.auth.deviceId as string;
  const ran: string[][] = [];
  c.ws.addEventListener("message", async (e) => {
    const f = JSON.parse(String(e.data)) as AnyFrame;
    if (f.type !== "event" || f.event !== "node.invoke.request") return;
    const { id, command, params } = f.payload;
    let payload: unknown;
    if (command === "system.which") payload = { path: await which(params.name) };
    else if (command === "system.run") {
      ran.push([params.binary, ...params.args]);
      const out = await new Deno.Command(params.binary, {
        args: params.args,
        cwd: params.cwd,
        env: params.env,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const dec = new TextDecoder();
      payload = {
        stdout: dec.decode(out.stdout),
        stderr: dec.decode(out.stderr),
        exitCode: out.code,
        timedOut: false,
      };
    }
    c.send({
      type: "req",
      id: `res-${id}`,
      method: "node.invoke.result",
      params: payload === undefined
        ? { id, nodeId, ok: false, error: { code: "UNKNOWN_COMMAND", message: command } }
        : { id, nodeId, ok: true, payload },
    });
  });
  return { c, nodeId, ran };
}

// ------------------------------------------------------------------ approvals

Deno.test({
  name: "ui approvals: allow once in the page lets a node's system.run run; deny refuses",
  ...UI_TEST,
}, async (t) => {
  await using ui = await startUi();
  const op = await connected(ui.t.url);
  const node = await startNode(ui.t.url);
  const page = await openPage(ui, "approvals");
  try {
    await t.step(
      "with nothing waiting the page says so, and that older requests are not shown",
      async () => {
        await page.waitForSelector('[data-testid="approvals-empty"]', { state: "visible" });
        assert.match(
          await page.textContent('[data-testid="approvals-note"]') ?? "",
          /before this page opened are not shown/,
        );
      },
    );

    await t.step("a node's system.run shows a card; allow once runs it", async () => {
      const pending = op.request("node.invoke", {
        nodeId: node.nodeId,
        command: "system.run",
        params: { argv: ["echo", "hello from the page"] },
        idempotencyKey: crypto.randomUUID(),
        timeoutMs: 30_000,
      });
      const card = page.locator('[data-testid="approval-card"]');
      await card.waitFor();
      const cmd = await card.locator('[data-testid="approval-command"]').textContent();
      assert.match(cmd ?? "", /echo.* .*hello from the page/);
      await until(
        async () => /Run on node ops-node/.test(await card.textContent() ?? ""),
        "the node's name on the card",
      );
      assert.equal(await page.isVisible('[data-testid="approvals-empty"]'), false);
      await screenshot(page, "approvals-desktop");
      await card.locator('button[data-decision="allow-once"]').click();
      const res = await pending;
      assert.equal(res.ok, true, JSON.stringify(res.error));
      assert.equal(res.payload.payload.stdout, "hello from the page\n");
      assert.equal(node.ran.length, 1);
      await card.waitFor({ state: "detached" });
      await page.waitForSelector('[data-testid="approvals-empty"]', { state: "visible" });
    });

    await t.step(
      "hidden characters are shown escaped, with the warnings; deny refuses",
      async () => {
        const phone = await openPage(ui, "approvals", SIZES.phone);
        // U+202E (right-to-left override) would reverse what a person reads.
        const asked = await ok(op, "exec.approval.request", {
          commandArgv: ["echo", "safe\u202Etxt.exe"],
          timeoutMs: 60_000,
        });
        assert.equal(asked.status, "pending");
        for (const p of [page, phone]) {
          const card = p.locator(`[data-testid="approval-card"][data-id="${asked.id}"]`);
          await card.waitFor();
          const cmd = await card.locator('[data-testid="approval-command"]').textContent() ?? "";
          assert.equal(cmd.includes("\u202E"), false, "the raw override never reaches the page");
          assert.match(cmd, /\\u\{202E\}/);
          const warnings = await card.locator('[data-testid="approval-warnings"] li')
            .allTextContents();
          assert.ok(warnings.some((w) => /bidi/.test(w)), warnings.join("\n"));
        }
        await screenshot(phone, "approvals-phone");
        const decision = op.request("exec.approval.waitDecision", {
          id: asked.id,
          timeoutMs: 10_000,
        });
        await phone.locator(`[data-id="${asked.id}"] button[data-decision="deny"]`).click();
        const d = await decision;
        assert.equal(d.payload.decision, "deny");
        // The other page drops the card on exec.approval.resolved.
        await page.locator(`[data-id="${asked.id}"]`).waitFor({ state: "detached" });
        await phone.context().close();
      },
    );
    await t.step("no console errors (CSP included)", () => {
      assert.deepEqual(consoleErrors(page), []);
    });
  } finally {
    await node.c.close();
    await op.close();
  }
});

// ------------------------------------------------------------------ devices

/**
 * A signed connect as a Control UI served from another origin would make
 * it (allowed by `gateway.allowedOrigins`, but not the gateway's own page),
 * so it is not paired silently: an operator approves it.
 */
async function deviceConnect(
  url: string,
  origin: string,
  id: DeviceIdentity,
  o: { deviceToken?: string } = {},
): Promise<{ c: RawClient; res: AnyFrame }> {
  const c = new RawClient(url, undefined, { headers: { Origin: origin } });
  const ch = (await c.challenge()).payload;
  const client = {
    id: "webchat",
    version: "test",
    platform: "linux",
    mode: "webchat",
    displayName: "Second laptop",
  };
  const scopes = ["operator.read"];
  const auth = o.deviceToken ? { deviceToken: o.deviceToken } : { token: TEST_TOKEN };
  const device = await id.sign({
    challenge: ch,
    clientId: client.id,
    clientMode: client.mode,
    role: "operator",
    scopes,
    token: o.deviceToken ?? TEST_TOKEN,
    platform: client.platform,
  });
  const res = await c.connect(connectParams({ client, scopes, auth, device }));
  return { c, res };
}

const LAPTOP = "https://laptop.example";

Deno.test({
  name: "ui devices: a pairing request approved in the page pairs the device; revoke cuts it off",
  ...UI_TEST,
}, async (t) => {
  await using ui = await startUi({ config: { gateway: { allowedOrigins: [LAPTOP] } } });
  const op = await connected(ui.t.url);
  const page = await openPage(ui, "devices");
  const laptop = await DeviceIdentity.generate();
  let node: Awaited<ReturnType<typeof startNode>> | undefined;
  let conn: RawClient | undefined;
  try {
    let requestId = "";
    await t.step("a second device asks; the request shows up live", async () => {
      await page.waitForSelector('[data-testid="pair-pending-empty"]');
      const first = await deviceConnect(ui.t.url, LAPTOP, laptop);
      assert.equal(first.res.ok, false);
      assert.equal(first.res.error.details.code, "PAIRING_REQUIRED", JSON.stringify(first.res));
      requestId = first.res.error.details.requestId;
      await first.c.close();
      const row = page.locator(`[data-testid="pair-request"][data-request-id="${requestId}"]`);
      await row.waitFor();
      const text = await row.textContent() ?? "";
      assert.match(text, /Second laptop/);
      assert.match(text, /operator\.read/);
    });

    await t.step("a node shows in the node list", async () => {
      node = await startNode(ui.t.url);
      await page.click("text=Refresh");
      await page.locator(
        `[data-testid="node"][data-node-id="${node.nodeId}"][data-connected="true"]`,
      ).waitFor();
      await screenshots(ui, page, "devices", `[data-request-id="${requestId}"]`);
    });

    await t.step("approve in the page: the device is paired and connects", async () => {
      await page.locator(`[data-request-id="${requestId}"] button[data-action="approve"]`).click();
      await page.locator(`[data-request-id="${requestId}"]`).waitFor({ state: "detached" });
      await page.locator(`[data-testid="device"][data-device-id="${laptop.deviceId}"]`).waitFor();
      const list = await ok(op, "device.pair.list", {});
      assert.ok(list.paired.some((d: AnyFrame) => d.deviceId === laptop.deviceId));
      assert.equal(list.pending.length, 0);
      const again = await deviceConnect(ui.t.url, LAPTOP, laptop);
      assert.equal(again.res.ok, true, JSON.stringify(again.res.error));
      assert.ok(again.res.payload.auth.deviceToken, "it got its own token");
      await again.c.close();
      // Connect with the device token, which is what revoking cuts off.
      const tok = again.res.payload.auth.deviceToken as string;
      const byToken = await deviceConnect(ui.t.url, LAPTOP, laptop, { deviceToken: tok });
      assert.equal(byToken.res.ok, true, JSON.stringify(byToken.res.error));
      conn = byToken.c;
    });

    await t.step("revoke asks once more, then cuts the device's socket", async () => {
      await page.click("text=Refresh");
      const revoke = page.locator(
        `[data-device-id="${laptop.deviceId}"] button[data-action="revoke"][data-role="operator"]`,
      );
      await revoke.click();
      assert.match(await revoke.textContent() ?? "", /Confirm/);
      assert.equal(conn!.isClosed, false, "one click does nothing yet");
      await revoke.click();
      await until(() => conn!.isClosed, "the revoked device's socket to close");
      const list = await ok(op, "device.pair.list", {});
      const d = list.paired.find((d: AnyFrame) => d.deviceId === laptop.deviceId);
      assert.ok(d.tokens.find((x: AnyFrame) => x.role === "operator").revokedAtMs);
      await page.locator(`[data-device-id="${laptop.deviceId}"] .badge.err`).waitFor();
    });

    await t.step("this browser is marked, and remove forgets the laptop", async () => {
      const self = await page.locator('[data-testid="device"]', { hasText: "this browser" })
        .count();
      assert.equal(self, 1);
      const remove = page.locator(
        `[data-device-id="${laptop.deviceId}"] button[data-action="remove"]`,
      );
      await remove.click();
      await remove.click();
      await page.locator(`[data-device-id="${laptop.deviceId}"]`).waitFor({ state: "detached" });
      const list = await ok(op, "device.pair.list", {});
      assert.equal(list.paired.some((d: AnyFrame) => d.deviceId === laptop.deviceId), false);
    });
    await t.step("no console errors (CSP included)", () => {
      assert.deepEqual(consoleErrors(page), []);
    });
  } finally {
    await conn?.close();
    await node?.c.close();
    await op.close();
  }
});

// ------------------------------------------------------------------ channels

Deno.test({ name: "ui channels: none configured says so", ...UI_TEST }, async () => {
  await using ui = await startUi();
  const page = await openPage(ui, "channels", SIZES.phone);
  const empty = page.locator('[data-testid="channels-empty"]');
  await empty.waitFor();
  assert.match(await empty.textContent() ?? "", /No channels are configured/);
  assert.equal(await page.locator('[data-testid="channel"]').count(), 0);
  assert.deepEqual(consoleErrors(page), []);
});

const TG_TOKEN = "123456:AAtest-token-abcdefghijklmnop";

Deno.test({
  name: "ui channels: Telegram's state, a probe, and a sender approved in the page",
  ...UI_TEST,
}, async (t) => {
  await using tg = await TelegramApi.start({ tokens: { [TG_TOKEN]: { username: "gw_ui_bot" } } });
  await using ui = await startUi({
    config: { channels: { telegram: { botToken: TG_TOKEN, apiRoot: tg.apiRoot } } },
  });
  const op = await connected(ui.t.url);
  const page = await openPage(ui, "channels");
  try {
    const card = page.locator('[data-testid="channel"][data-channel="telegram"]');
    await t.step("the account shows connected (refreshing until the bot is up)", async () => {
      await card.waitFor();
      await until(
        async () => {
          if (await card.getAttribute("data-state") === "connected") return true;
          await page.click('[data-testid="channels-probe"]');
          return false;
        },
        "the Telegram account to show connected",
        15_000,
      );
      assert.match(
        await card.locator('[data-testid="channel-state"]').first().textContent() ?? "",
        /connected/,
      );
    });

    await t.step("probe checks the token with the Bot API", async () => {
      await page.click('[data-testid="channels-probe"]');
      const probe = card.locator('[data-testid="channel-probe"]');
      await probe.waitFor();
      assert.match(await probe.textContent() ?? "", /credentials work.*@gw_ui_bot/);
    });

    await t.step("a stranger's pairing request is approved in the page", async () => {
      await card.locator('[data-testid="channel-pairing-empty"]').waitFor();
      await tg.userSays(TG_TOKEN, "hello?", { chatId: 4242, userId: 4242, firstName: "Grace" });
      const req = card.locator('[data-testid="channel-pairing-request"]');
      await until(
        async () => {
          if (await req.count()) return true;
          await page.click('[data-testid="channels-probe"]');
          return false;
        },
        "the pairing request in the page",
        15_000,
      );
      assert.match(await req.textContent() ?? "", /Grace/);
      await screenshots(ui, page, "channels", '[data-testid="channel-pairing-request"]');
      await req.locator('button[data-action="approve"]').click();
      await until(async () => {
        const l = await ok(op, "telegram.pairing.list", {});
        return l.allowed.some((a: AnyFrame) => String(a.senderId) === "4242");
      }, "the sender to be approved");
      await card.locator('[data-testid="channel-pairing-empty"]').waitFor();
      await until(
        async () => /Approved: Grace/.test(await card.textContent() ?? ""),
        "Grace among the approved",
      );
    });
    await t.step("no console errors (CSP included)", () => {
      assert.deepEqual(consoleErrors(page), []);
    });
  } finally {
    await op.close();
  }
});

// ------------------------------------------------------------------ usage

Deno.test({ name: "ui usage: the chart and tables after one chat turn", ...UI_TEST }, async (t) => {
  await using fake = await startFakeAnthropic({ apiKey: "k-test" });
  await using ui = await startUi({
    config: {
      agents: { defaults: { model: "anthropic/claude-sonnet-4-6" } },
      models: { providers: { anthropic: { apiKey: "k-test", baseUrl: fake.url } } },
    },
  });
  const op = await connected(ui.t.url);
  const page = await openPage(ui, "usage");
  try {
    await t.step("nothing used yet", async () => {
      await page.locator('[data-testid="usage-empty"]').waitFor();
      assert.equal(await page.locator('[data-testid="usage-chart"] rect.usage-bar').count(), 0);
    });

    await t.step("one chat turn draws bars for today and a row for the model", async () => {
      fake.script({
        blocks: [{ type: "text", text: "Hi!" }],
        usage: { input_tokens: 1200, output_tokens: 300 },
      });
      const ack = await ok(op, "chat.send", {
        sessionKey: "main",
        message: "hello",
        idempotencyKey: "ui-usage-1",
      });
      assert.equal(ack.status, "started");
      await op.next(
        (f) =>
          f.event === "chat" && f.payload.runId === "ui-usage-1" && f.payload.state === "final",
        10_000,
      );
      // The page reloads by itself when a turn ends; Refresh is there too.
      await page.locator('[data-testid="usage-chart"] rect.usage-bar').first().waitFor();
      const chart = page.locator('[data-testid="usage-chart"]');
      assert.equal(await chart.getAttribute("role"), "img");
      assert.match(await chart.getAttribute("aria-label") ?? "", /1\.5k in all/);
      const values = await chart.locator("rect.usage-bar").evaluateAll((rs) =>
        rs.map((r) => [r.getAttribute("data-kind"), Number(r.getAttribute("data-value"))])
      );
      assert.deepEqual(values, [["input", 1200], ["output", 300]]);
      const model = page.locator('[data-testid="usage-by-model"] tbody tr');
      assert.equal(await model.count(), 1);
      assert.match(await model.textContent() ?? "", /claude-sonnet-4-6.*1,200.*300.*1,500/);
      await page.locator('[data-testid="usage-model-chart"] rect[data-model]').waitFor();
      assert.match(await page.textContent('[data-testid="usage-totals"]') ?? "", /\$0\.0081/);
    });

    await t.step("the cost view redraws the same days in dollars", async () => {
      await page.click('[data-testid="usage-metric"] button[data-metric="cost"]');
      const bar = page.locator('[data-testid="usage-chart"] rect.usage-bar-cost');
      await bar.waitFor();
      assert.ok(Math.abs(Number(await bar.getAttribute("data-value")) - 0.0081) < 1e-9);
      await page.click('[data-testid="usage-metric"] button[data-metric="tokens"]');
      await screenshots(ui, page, "usage", '[data-testid="usage-chart"] rect.usage-bar');
    });
    await t.step("no console errors (CSP included)", () => {
      assert.deepEqual(consoleErrors(page), []);
    });
  } finally {
    await op.close();
  }
});

// ------------------------------------------------------------------ logs

Deno.test({
  name: "ui logs: new lines arrive, filters hide, the view follows and stays bounded",
  ...UI_TEST,
}, async (t) => {
  await using ui = await startUi();
  const page = await openPage(ui, "logs");
  const lines = page.locator('[data-testid="log-line"]');
  const box = page.locator('[data-testid="logs-lines"]');

  await t.step("a failed login shows up as a new warning line", async () => {
    await lines.first().waitFor();
    const bad = new RawClient(ui.t.url);
    const res = await bad.connect(connectParams({ auth: { token: "wrong-token-0000" } }));
    assert.equal(res.ok, false);
    await bad.close();
    const warn = page.locator('[data-testid="log-line"][data-level="warn"]', {
      hasText: "authentication failed",
    });
    await warn.waitFor();
  });

  await t.step("the filter box and the level filter hide lines", async () => {
    await page.fill('[data-testid="logs-filter"]', "authentication FAILED");
    await until(
      async () =>
        (await lines.evaluateAll((ls) => ls.filter((l) => !l.hasAttribute("hidden")).length)) ===
          1,
      "one line left",
    );
    await page.fill('[data-testid="logs-filter"]', "");
    await page.selectOption('[data-testid="logs-level"]', "warn");
    await until(async () => {
      const shown = await lines.evaluateAll((ls) =>
        ls.filter((l) => !l.hasAttribute("hidden")).map((l) => l.getAttribute("data-level"))
      );
      return shown.length > 0 && shown.every((l) => l === "warn" || l === "error");
    }, "only warnings and errors");
    await page.selectOption('[data-testid="logs-level"]', "");
    await until(
      async () =>
        (await lines.evaluateAll((ls) => ls.filter((l) => l.hasAttribute("hidden")).length)) === 0,
      "every line shown again",
    );
    await screenshots(ui, page, "logs", '[data-testid="log-line"][data-level="warn"]');
  });

  await t.step("following, paused by scrolling up, bounded to 1000 lines", async () => {
    // gw's own log file: lines appended to it are what logs.tail reads next.
    const file = `${ui.t.stateDir}/logs/gw.log`;
    const batch = (from: number, n: number) =>
      Array.from({ length: n }, (_, i) =>
        JSON.stringify({
          time: new Date().toISOString(),
          level: "info",
          subsystem: "test",
          message: `filler line ${from + i}`,
        }) + "\n").join("");
    await Deno.writeTextFile(file, batch(0, 200), { append: true });
    await page.locator('[data-testid="log-line"]', { hasText: "filler line 199" }).waitFor();
    assert.equal(await box.getAttribute("data-following"), "true");
    const atBottom = () => box.evaluate((b) => b.scrollTop + b.clientHeight >= b.scrollHeight - 30);
    await until(atBottom, "the view at the newest line");
    await box.evaluate((b) => (b.scrollTop = 0));
    await until(async () => await box.getAttribute("data-following") === "false", "paused");
    await Deno.writeTextFile(file, batch(200, 1200), { append: true });
    await page.locator('[data-testid="log-line"]', { hasText: "filler line 1399" }).waitFor({
      state: "attached",
    });
    assert.equal(await atBottom(), false, "a paused view does not jump");
    assert.match(await page.textContent('[data-testid="logs-follow"]') ?? "", /Jump to latest/);
    assert.equal(await lines.count(), 1000, "the page keeps the newest 1000 lines");
    assert.equal(
      await page.locator('[data-testid="log-line"]', { hasText: "filler line 0" }).count(),
      0,
      "the oldest lines are gone",
    );
    await page.click('[data-testid="logs-follow"]');
    await until(atBottom, "the view back at the newest line");
    assert.equal(await box.getAttribute("data-following"), "true");
    assert.deepEqual(consoleErrors(page), []);
  });
});
