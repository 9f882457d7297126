/**
 * Faults, CI-sized (docs/reliability.md, "Chaos"): SIGKILL during a write-heavy
 * workload (10 cycles; `deno task chaos --cycles 50` is the documented run),
 * a full disk under the state dir, and Telegram's API failing (5xx, 429). The
 * provider hanging, a node vanishing mid-invoke and the clock jumping have
 * their tests in chat_test.ts, node_test.ts and cron_test.ts (listed in the
 * docs).
 */
import assert from "node:assert/strict";
import {
  type AnyFrame,
  connected,
  ok,
  type RawClient,
  startTestGateway,
  until as waitFor,
} from "./_helpers.ts";
import { startFakeAnthropic } from "./_fake_anthropic.ts";
import { TelegramApi } from "./_telegram_api.ts";
import { checkAcked, checkKv, runChaos } from "./chaos.ts";
import { keys } from "../lib/store/keys.ts";

/** {@link waitFor} with this file's longer default. */
const until = <T>(fn: () => T | Promise<T>, what: string, ms = 20_000) => waitFor(fn, what, ms);

/** The answer to a request within `ms`, or a failure naming a hang. */
async function answered(c: RawClient, method: string, params: unknown, ms = 10_000) {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const res = c.request(method, params);
  res.catch(() => {});
  try {
    return await Promise.race([
      res,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${method} hung for ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("chaos: 10 kill -9 cycles during a write-heavy workload lose no acknowledged write", async () => {
  const r = await runChaos({ cycles: 10 });
  assert.deepEqual(r.problems, [], `seed ${r.seed}`);
  assert.equal(r.passed, 10);
  // Every kind of write was acknowledged (and so checked) at least once.
  for (const [kind, n] of Object.entries(r.acked)) assert.ok(n > 0, `no ${kind} write acked`);
});

Deno.test({
  name: "chaos: a full disk under the state dir fails writes with an error; nothing is corrupt",
  // Needs root to mount a 4 MB tmpfs; elsewhere the test says why it cannot run.
  ignore: Deno.build.os !== "linux" || Deno.uid() !== 0,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "gw-diskfull-" });
    const mount = await new Deno.Command("mount", {
      args: ["-t", "tmpfs", "-o", "size=4m", "tmpfs", dir],
      stderr: "piped",
    }).output();
    if (!mount.success) {
      console.warn(`skipped: mount tmpfs failed: ${new TextDecoder().decode(mount.stderr)}`);
      await Deno.remove(dir);
      return;
    }
    const fake = await startFakeAnthropic({ apiKey: "k-test" });
    fake.script(() => ({ blocks: [{ type: "text", text: "ok" }] }));
    const config = {
      agents: { defaults: { model: "anthropic/claude-sonnet-4-6" } },
      models: { providers: { anthropic: { apiKey: "k-test", baseUrl: fake.url } } },
    };
    try {
      let job: AnyFrame;
      {
        await using t = await startTestGateway({ stateDir: dir, config });
        const c = await connected(t.url);
        try {
          await ok(c, "chat.send", { sessionKey: "df", message: "before", idempotencyKey: "df1" });
          await ok(c, "sessions.patch", { key: "df", label: "kept" });
          job = await ok(c, "cron.add", {
            name: "kept job",
            schedule: { kind: "every", everyMs: 3_600_000 },
            payload: { kind: "systemEvent", text: "x" },
            wakeMode: "next-heartbeat",
          });
          // Fill the disk.
          const f = await Deno.open(`${dir}/filler`, { write: true, create: true });
          const chunk = new Uint8Array(64 * 1024);
          try {
            for (;;) await f.write(chunk);
          } catch (e) {
            assert.match(String(e), /space|ENOSPC|os error 28/i);
          } finally {
            f.close();
          }
          // Writes answer an error (no hang, no crash); reads and health still work.
          const base = await ok(c, "config.get", {});
          const big = "x".repeat(64 * 1024);
          const cp = await answered(c, "config.patch", {
            patch: { agents: { defaults: { systemPrompt: big } } },
            baseHash: base.hash,
          });
          assert.equal(cp.ok, false, "config.patch on a full disk");
          assert.ok(cp.error.message, JSON.stringify(cp.error));
          const many = Array.from({ length: 20 }, (_, i) => `full ${i} ${big}`);
          const sends = [];
          for (const [i, message] of many.entries()) {
            sends.push(
              await answered(c, "chat.send", {
                sessionKey: "df",
                message,
                idempotencyKey: `full-${i}`,
              }),
            );
          }
          const failed = sends.filter((s) => !s.ok);
          assert.ok(failed.length > 0, "some chat.send on a full disk fails");
          assert.ok(failed[0].error.message, JSON.stringify(failed[0].error));
          assert.equal((await answered(c, "health", {})).ok, true);
          // Space comes back: writes work again without a restart.
          await Deno.remove(`${dir}/filler`);
          const base2 = await ok(c, "config.get", {});
          await ok(c, "config.patch", {
            patch: { skills: { entries: { after: { enabled: false } } } },
            baseHash: base2.hash,
          });
          await ok(c, "chat.send", { sessionKey: "df", message: "after", idempotencyKey: "df2" });
        } finally {
          await c.close();
        }
      }
      // Restart on the same dir (its gw.json as gw left it): everything acknowledged is intact.
      await using t = await startTestGateway({ stateDir: dir });
      const c = await connected(t.url);
      try {
        const h = await ok(c, "chat.history", { sessionKey: "df", limit: 1000 });
        const users = h.messages.filter((m: AnyFrame) => m.role === "user").map((m: AnyFrame) =>
          m.content
        );
        assert.ok(users.includes("before") && users.includes("after"), JSON.stringify(users));
        assert.equal((await ok(c, "sessions.list", { label: "kept" })).sessions.length, 1);
        assert.equal((await ok(c, "cron.get", { id: job.id })).id, job.id);
        const cfg = await ok(c, "config.get", {});
        assert.ok("after" in cfg.parsed.skills.entries);
      } finally {
        await c.close();
      }
    } finally {
      await fake.close();
      await new Deno.Command("umount", { args: [dir] }).output();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test("chaos: Telegram's API failing (5xx, 429): the channel backs off, status shows it, gw serves, then recovers", async () => {
  const TOKEN = "123456:AAtest-token-abcdefghijklmnop";
  await using tg = await TelegramApi.start({ tokens: { [TOKEN]: { username: "gw_chaos_bot" } } });
  const fake = await startFakeAnthropic({ apiKey: "k-test" });
  fake.script(() => ({ blocks: [{ type: "text", text: "hello back" }] }));
  try {
    await using t = await startTestGateway({
      config: {
        agents: { defaults: { model: "anthropic/claude-sonnet-4-6" } },
        models: { providers: { anthropic: { apiKey: "k-test", baseUrl: fake.url } } },
        channels: { telegram: { botToken: TOKEN, apiRoot: tg.apiRoot, dmPolicy: "open" } },
      },
    });
    const c = await connected(t.url);
    try {
      const account = async () =>
        (await ok(c, "channels.status", {})).channelAccounts.telegram?.[0];
      await until(async () => (await account())?.connected, "the bot to connect");
      // The next getUpdates calls fail: 502 twice, then 429 with retry_after.
      tg.fail("getUpdates", { status: 502, description: "Bad Gateway", times: 2 });
      tg.fail("getUpdates", {
        status: 429,
        description: "Too Many Requests: retry after 1",
        retryAfter: 1,
      });
      // A message ends the long poll that is held now, so the next one meets the faults.
      await tg.userSays(TOKEN, "wake", { chatId: 2001, userId: 2001, firstName: "Bo" });
      const down = await until(async () => {
        const a = await account();
        return a && !a.connected && a.lastError ? a : null;
      }, "the failure in channels.status");
      assert.match(String(down.lastError), /502|Bad Gateway|429|Too Many/i);
      assert.ok(down.reconnectAttempts >= 1, JSON.stringify(down));
      // The gateway keeps serving while the channel is down.
      assert.equal((await answered(c, "health", {})).ok, true);
      await ok(c, "sessions.patch", { key: "tg-chaos", label: "still serving" });
      // The API comes back: polling resumes.
      const up = await until(async () => {
        const a = await account();
        return a?.connected ? a : null;
      }, "the reconnect");
      assert.equal(up.lastError, null);
      const failedPolls = tg.callsOf("getUpdates", TOKEN).length;
      assert.ok(failedPolls >= 4, `${failedPolls} getUpdates calls: the failures were retried`);
      // sendMessage failing with a 429 is retried after retry_after; the reply arrives.
      await until(
        () => tg.botMessages(TOKEN, 2001).some((m) => /hello back/.test(m.text)),
        "the first reply",
      );
      tg.fail("sendMessage", {
        status: 429,
        description: "Too Many Requests: retry after 1",
        retryAfter: 1,
      });
      const sends = tg.callsOf("sendMessage", TOKEN).length;
      await tg.userSays(TOKEN, "again", { chatId: 2001, userId: 2001, firstName: "Bo" });
      await until(
        () => tg.botMessages(TOKEN, 2001).filter((m) => /hello back/.test(m.text)).length >= 2,
        "the reply after a 429",
      );
      assert.ok(
        tg.callsOf("sendMessage", TOKEN).length >= sends + 2,
        "the 429 sendMessage was retried",
      );
    } finally {
      await c.close();
    }
  } finally {
    await fake.close();
  }
});

Deno.test("chaos checker: a missing write of each kind and an orphan due entry are reported", async () => {
  const token = "4242:checker";
  await using tg = await TelegramApi.start({ tokens: [token] });
  await using t = await startTestGateway({
    config: { channels: { telegram: { botToken: token, apiRoot: tg.apiRoot } } },
  });
  const problems = await checkAcked(t.url, {
    chat: new Map([["chaos-missing", ["msg never sent"]]]),
    labels: new Map([["chaos-missing-label", "L missing"]]),
    cron: new Set(["no-such-job"]),
    config: new Set(["no-such-entry"]),
    devices: new Set(["0".repeat(64)]),
    telegram: new Set(["31337"]),
  });
  assert.equal(problems.length, 6, JSON.stringify(problems));
  assert.ok(problems.some((p) => p === "lost Telegram approval of sender 31337"), problems.join());
  // A KV with a due-index entry whose job is missing, and a pending input without its session.
  const dir = await Deno.makeTempDir({ prefix: "gw-chaos-kv-" });
  try {
    {
      using kv = await Deno.openKv(`${dir}/gw.kv`);
      await kv.set(keys.cronDue(1, "ghost"), "ghost");
      await kv.set(keys.pendingInput("agent:main:ghost", "p1"), { text: "x" });
    }
    const kvProblems = await checkKv(dir);
    assert.equal(kvProblems.length, 2, JSON.stringify(kvProblems));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
