/**
 * `gw channels` and `gw pairing` end to end: a real gateway, a Bot API server
 * on real sockets (`_telegram_api.ts`), and the CLI in child processes run
 * exactly as the binary runs it (`deno run -P=gw main.ts ...`, clean
 * environment, NO_COLOR=1). The gateway's secret reaches the CLI through
 * GW_TOKEN, since `--token` is the bot's token in `gw channels add`.
 */
import assert from "node:assert/strict";
import { type AnyFrame, gwRunArgs, startTestGateway } from "./_helpers.ts";
import { childEnv, json, okRun, type RunResult, show } from "./_cli.ts";
import { TelegramApi } from "./_telegram_api.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const TOKEN = "123456:valid-token-abcdefghijklmnop";
const BAD_TOKEN = "654321:not-a-valid-token-zyxwvutsrq";
const HINT =
  "no channels configured; add one: gw channels add telegram --token <token from @BotFather>";

// ------------------------------------------------------------------ helpers

/** A home dir for the CLI children; `await using` removes it. */
async function tempHome() {
  const home = await Deno.makeTempDir({ prefix: "gw-cli-channels-home-" });
  return {
    home,
    async [Symbol.asyncDispose]() {
      await Deno.remove(home, { recursive: true }).catch(() => {});
    },
  };
}

/** Run `gw <args>` with HOME `home` (and `env`), killed after 30 s. */
async function gw(home: string, args: string[], env: Record<string, string> = {}) {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), 30_000);
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: gwRunArgs(...args),
      cwd: ROOT,
      env: await childEnv(home, { TZ: "UTC", ...env }),
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: ac.signal,
    }).output();
    const dec = new TextDecoder();
    return {
      code: out.code,
      stdout: dec.decode(out.stdout),
      stderr: dec.decode(out.stderr),
    } as RunResult;
  } finally {
    clearTimeout(timer);
  }
}

/** A gateway, a Bot API server, a CLI home, and `gw` aimed at that gateway. */
async function setup() {
  const tg = await TelegramApi.start({ tokens: { [TOKEN]: { username: "gw_test_bot" } } });
  const t = await startTestGateway();
  const h = await tempHome();
  const run = (args: string[]) => gw(h.home, [...args, "--url", t.url], { GW_TOKEN: t.token });
  return {
    tg,
    t,
    home: h.home,
    run,
    async [Symbol.asyncDispose]() {
      await t.stop();
      await tg.close();
      await h[Symbol.asyncDispose]();
    },
  };
}

/** A loopback port nothing listens on. */
function closedPort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Poll `check` every 200 ms until it returns a value; fail after `ms`. */
async function until<T>(what: string, check: () => Promise<T | undefined>, ms = 15_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function fileOrNull(path: string): Promise<string | null> {
  return await Deno.readTextFile(path).catch(() => null);
}

function noToken(r: RunResult, token: string): void {
  for (const s of [token, encodeURIComponent(token), token.split(":")[1]!]) {
    assert.ok(!r.stdout.includes(s) && !r.stderr.includes(s), `the token was printed: ${show(r)}`);
  }
}

// ------------------------------------------------------------------ tests

Deno.test("cli channels: nothing configured shows how to add a bot; pairing and logout say so", async () => {
  await using env = await setup();
  const r = okRun(await env.run(["channels"]), "channels");
  assert.equal(r.stdout.trim(), HINT);
  const s = okRun(await env.run(["channels", "status", "--probe"]), "channels status --probe");
  assert.equal(s.stdout.trim(), HINT);
  const j = json(okRun(await env.run(["channels", "status", "--json"]), "status --json"));
  assert.deepEqual(j.channelOrder, []);
  assert.deepEqual(j.statusIssues, []);

  for (
    const args of [
      ["pairing"],
      ["pairing", "list", "telegram"],
      ["pairing", "approve", "telegram", "ABCD2345"],
      ["pairing", "reject", "telegram", "ABCD2345"],
      ["channels", "logout", "telegram"],
    ]
  ) {
    const p = await env.run(args);
    assert.equal(p.code, 1, `${args.join(" ")}: ${show(p)}`);
    assert.match(
      p.stderr,
      /Telegram is not configured on this gateway; add it first: gw channels add telegram --token <token from @BotFather>/,
      args.join(" "),
    );
  }
  const pj = await env.run(["pairing", "list", "--json"]);
  assert.equal(pj.code, 1, show(pj));
  assert.equal(json(pj).error.code, "UNAVAILABLE");
  assert.equal(json(pj).error.details.code, "METHOD_UNAVAILABLE");
});

Deno.test("cli channels add: a token Telegram refuses (or cannot check) is neither saved nor printed", async () => {
  await using env = await setup();
  const path = `${env.t.stateDir}/gw.json`;
  const before = await fileOrNull(path);

  const r = await env.run([
    "channels",
    "add",
    "telegram",
    "--token",
    BAD_TOKEN,
    "--api-root",
    env.tg.apiRoot,
  ]);
  assert.equal(r.code, 1, show(r));
  assert.match(
    r.stderr,
    /Telegram rejected this token \(401 Unauthorized\): check it with @BotFather/,
  );
  noToken(r, BAD_TOKEN);
  assert.equal(env.tg.callsOf("getMe", BAD_TOKEN).length, 1);

  const j = await env.run([
    "channels",
    "add",
    "telegram",
    "--token",
    BAD_TOKEN,
    "--api-root",
    `${env.tg.apiRoot}/`,
    "--json",
  ]);
  assert.equal(j.code, 1, show(j));
  assert.equal(json(j).error.type, "telegram_rejected");
  noToken(j, BAD_TOKEN);

  const down = `http://127.0.0.1:${closedPort()}`;
  const u = await env.run(["channels", "add", "telegram", "--token", TOKEN, "--api-root", down]);
  assert.equal(u.code, 1, show(u));
  assert.match(u.stderr, new RegExp(`cannot reach Telegram at ${down.replace(/\./g, "\\.")}`));
  noToken(u, TOKEN);

  assert.equal(await fileOrNull(path), before);
  const s = json(okRun(await env.run(["channels", "status", "--json"]), "status"));
  assert.deepEqual(s.channelOrder, []);
});

Deno.test("cli channels add through the running gateway: the bot starts; pairing list, approve, reject; logout", async (t) => {
  await using env = await setup();
  const path = `${env.t.stateDir}/gw.json`;

  await t.step("add checks the token, saves it through the gateway, never prints it", async () => {
    const r = okRun(
      await env.run([
        "channels",
        "add",
        "telegram",
        "--token",
        TOKEN,
        "--api-root",
        env.tg.apiRoot,
      ]),
      "channels add",
    );
    assert.match(
      r.stdout,
      /^Telegram bot @gw_test_bot added \(saved by the gateway to \S*gw\.json; the bot is starting\)\. Message it on Telegram; the first message gets a pairing code, which you approve with: gw pairing approve telegram <CODE>$/m,
    );
    noToken(r, TOKEN);
    const cfg = json(okRun(await env.run(["call", "config.get", "--json"]), "config.get"));
    assert.equal(cfg.parsed.channels.telegram.botToken, "__GW_REDACTED__");
    assert.equal(cfg.parsed.channels.telegram.apiRoot, env.tg.apiRoot);
    assert.equal(cfg.parsed.channels.telegram.enabled, true);
    const onDisk = JSON.parse(await Deno.readTextFile(path));
    assert.equal(onDisk.channels.telegram.botToken, TOKEN);
    if (Deno.build.os !== "windows") assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
  });

  await t.step("channels status lists the bot, running (polled)", async () => {
    // The bot knows its name once getMe answered; it counts as connected once
    // its first getUpdates returns (a long poll: up to 30 s without messages).
    const account = await until("telegram running", async () => {
      const s = json(okRun(await env.run(["channels", "status", "--json"]), "status --json"));
      assert.deepEqual(s.channelOrder, ["telegram"]);
      const a = s.channelAccounts.telegram[0];
      assert.equal(a.configured, true, JSON.stringify(a));
      return a.running && a.name ? a : undefined;
    });
    assert.equal(account.name, "@gw_test_bot");
    assert.equal(account.mode, "polling");
    assert.equal(account.dmPolicy, "pairing");
    assert.equal(account.lastError, null);
    const r = okRun(await env.run(["channels", "status", "--probe"]), "status --probe");
    assert.match(r.stdout, /^CHANNEL\s+BOT\s+STATE\s+MODE\s+DM POLICY\s+PROBE\s+LAST ERROR$/m);
    assert.match(
      r.stdout,
      /^Telegram\s+@gw_test_bot\s+(connected|connecting)\s+polling\s+pairing\s+ok \(\d+ ms\)\s+-$/m,
    );
    noToken(r, TOKEN);
  });

  let code = "";
  await t.step("a stranger's message makes a pairing request the list shows", async () => {
    const empty = okRun(await env.run(["pairing"]), "pairing").stdout;
    assert.match(empty, /Pending Telegram pairing requests \(0\)/);
    assert.match(empty, /Approved Telegram senders \(0\)/);
    await env.tg.userSays(TOKEN, "hello", {
      chatId: 42,
      userId: 42,
      username: "ann",
      firstName: "Ann",
    });
    const req = await until("a pairing request", async () => {
      const l = json(okRun(await env.run(["pairing", "list", "--json"]), "pairing list --json"));
      assert.equal(l.channel, "telegram");
      return l.requests.find((r: AnyFrame) => r.senderId === "42");
    });
    code = req.code;
    assert.match(code, /^[A-Z0-9]{4,16}$/);
    const table = okRun(await env.run(["pairing", "list", "telegram"]), "pairing list").stdout;
    assert.match(table, /Pending Telegram pairing requests \(1\)/);
    assert.match(
      table,
      new RegExp(`^${code}\\s+Ann @ann \\(42\\)\\s+(now|\\d+s ago)\\s+in \\d+`, "m"),
    );
    assert.match(table, /approve with: gw pairing approve telegram <CODE>/);
    // A getUpdates answered: the bot is connected now.
    const s = okRun(await env.run(["channels", "status"]), "status").stdout;
    assert.match(s, /^Telegram\s+@gw_test_bot\s+connected\s+polling\s+pairing\s+-$/m);
  });

  await t.step("an unknown code: the gateway's message, exit 1", async () => {
    for (const sub of ["approve", "reject"]) {
      const r = await env.run(["pairing", sub, "telegram", "ZZZZ2345"]);
      assert.equal(r.code, 1, show(r));
      assert.match(
        r.stderr,
        /INVALID_REQUEST: no pending Telegram pairing request with code ZZZZ2345/,
      );
    }
    const j = await env.run(["pairing", "approve", "telegram", "ZZZZ2345", "--json"]);
    assert.equal(j.code, 1, show(j));
    assert.equal(json(j).error.details.code, "PAIRING_CODE_UNKNOWN");
  });

  await t.step("approve (any case): the sender is allowed and told", async () => {
    const r = okRun(
      await env.run(["pairing", "approve", "telegram", code.toLowerCase()]),
      "pairing approve",
    );
    assert.equal(r.stdout.trim(), "approved Ann @ann (42) on telegram; they were told");
    const l = json(okRun(await env.run(["pairing", "list", "--json"]), "list"));
    assert.deepEqual(l.requests, []);
    assert.deepEqual(l.allowed.map((a: AnyFrame) => a.senderId), ["42"]);
    const told = env.tg.botMessages(TOKEN, 42).map((m) => m.plainText);
    assert.ok(told.some((t) => /approved/i.test(t)), JSON.stringify(told));
    const table = okRun(await env.run(["pairing"]), "pairing").stdout;
    assert.match(table, /Approved Telegram senders \(1\)/);
    assert.match(table, /^42\s+Ann @ann\s+/m);
  });

  await t.step("reject: the request goes, the sender is not allowed", async () => {
    await env.tg.userSays(TOKEN, "hi there", {
      chatId: 43,
      userId: 43,
      username: "bob",
      firstName: "Bob",
    });
    const req = await until("bob's request", async () => {
      const l = json(okRun(await env.run(["pairing", "list", "--json"]), "list"));
      return l.requests.find((r: AnyFrame) => r.senderId === "43");
    });
    const r = okRun(await env.run(["pairing", "reject", "telegram", req.code]), "reject");
    assert.equal(r.stdout.trim(), "rejected Bob @bob (43) on telegram");
    const l = json(okRun(await env.run(["pairing", "list", "--json"]), "list"));
    assert.deepEqual(l.requests, []);
    assert.deepEqual(l.allowed.map((a: AnyFrame) => a.senderId), ["42"]);
  });

  await t.step("logout removes the token; status shows the hint again", async () => {
    const r = okRun(await env.run(["channels", "logout", "telegram"]), "logout");
    assert.match(
      r.stdout,
      /logged out of Telegram: the bot token was removed from the config and the bot stopped/,
    );
    const onDisk = JSON.parse(await Deno.readTextFile(path));
    assert.equal(onDisk.channels.telegram.botToken, undefined);
    const s = okRun(await env.run(["channels"]), "channels");
    assert.equal(s.stdout.trim(), HINT);
  });
});

Deno.test("cli channels add with no gateway running writes gw.json itself (0600, merged); gw start picks it up", async (t) => {
  const tg = await TelegramApi.start({ tokens: { [TOKEN]: { username: "gw_test_bot" } } });
  await using h = await tempHome();
  try {
    const port = closedPort();

    await t.step("merged into an existing gw.json, --json", async () => {
      const state = `${h.home}/state`;
      await Deno.mkdir(state);
      await Deno.writeTextFile(
        `${state}/gw.json`,
        JSON.stringify({
          gateway: { port },
          channels: { telegram: { requireMention: false, dmPolicy: "open" } },
        }),
      );
      const r = okRun(
        await gw(h.home, [
          "channels",
          "add",
          "telegram",
          "--token",
          TOKEN,
          "--api-root",
          tg.apiRoot,
          "--dm-policy",
          "allowlist",
          "--allow-from",
          "42, 43",
          "--state-dir",
          state,
          "--json",
        ]),
        "channels add --json",
      );
      noToken(r, TOKEN);
      assert.deepEqual(json(r), {
        ok: true,
        channel: "telegram",
        bot: { id: 123456, username: "gw_test_bot" },
        savedTo: "file",
        path: `${state}/gw.json`,
      });
      const file = JSON.parse(await Deno.readTextFile(`${state}/gw.json`));
      assert.deepEqual(file.gateway, { port });
      assert.deepEqual(file.channels.telegram, {
        requireMention: false,
        dmPolicy: "allowlist",
        botToken: TOKEN,
        apiRoot: tg.apiRoot,
        allowFrom: ["42", "43"],
        enabled: true,
      });
      if (Deno.build.os !== "windows") {
        assert.equal((await Deno.stat(`${state}/gw.json`)).mode! & 0o777, 0o600);
      }
    });

    await t.step(
      "a fresh state dir (TELEGRAM_API_ROOT), then a gateway started on it runs the bot",
      async () => {
        const state = `${h.home}/fresh`;
        const r = okRun(
          await gw(
            h.home,
            ["channels", "add", "telegram", "--token", TOKEN, "--state-dir", state],
            { GW_PORT: String(port), TELEGRAM_API_ROOT: tg.apiRoot },
          ),
          "channels add",
        );
        noToken(r, TOKEN);
        assert.match(
          r.stdout,
          /^Telegram bot @gw_test_bot added \(saved to \S*fresh\/gw\.json; it takes effect at the next gw start\)\. Message it on Telegram; the first message gets a pairing code/m,
        );
        const file = JSON.parse(await Deno.readTextFile(`${state}/gw.json`));
        // The env's API root is not written down: the gateway reads the env itself.
        assert.deepEqual(file.channels.telegram, { botToken: TOKEN, enabled: true });
        if (Deno.build.os !== "windows") {
          assert.equal((await Deno.stat(`${state}/gw.json`)).mode! & 0o777, 0o600);
        }
        // Point it at the test Bot API, as the env would, and start a gateway on it.
        await Deno.writeTextFile(
          `${state}/gw.json`,
          JSON.stringify({
            channels: { telegram: { ...file.channels.telegram, apiRoot: tg.apiRoot } },
          }),
        );
        await using g = await startTestGateway({ stateDir: state });
        await until("the bot running", async () => {
          const s = json(
            okRun(
              await gw(h.home, ["channels", "status", "--json", "--url", g.url], {
                GW_TOKEN: g.token,
              }),
              "status",
            ),
          );
          const a = s.channelAccounts.telegram?.[0];
          return a?.running && a.name === "@gw_test_bot" ? true : undefined;
        });
      },
    );
  } finally {
    await tg.close();
  }
});

Deno.test("cli channels, pairing: usage mistakes exit 2 and never echo a token", async () => {
  await using h = await tempHome();
  const state = `${h.home}/state`;
  for (
    const [args, re] of [
      [["channels", "bogus"], /unknown channels command 'bogus' \(expected status, add, logout\)/],
      [["channels", "status", "extra"], /channels status takes no arguments/],
      [
        ["channels", "status", "--api-root", "http://x"],
        /channels status does not take --api-root/,
      ],
      [
        ["channels", "add", "discord", "--token", "x"],
        /gw has no discord channel yet \(supported: telegram\)/,
      ],
      [
        ["channels", "add", "smoke-signals", "--token", "x"],
        /unknown channel 'smoke-signals' \(supported: telegram\)/,
      ],
      [["channels", "add"], /usage: gw channels add telegram --token/],
      [["channels", "add", "telegram"], /channels add telegram needs --token/],
      [
        ["channels", "add", "telegram", "--token", "1:a", "--dm-policy", "maybe"],
        /--dm-policy: expected pairing, allowlist, open, disabled, got 'maybe'/,
      ],
      [
        ["channels", "add", "telegram", "--token", "1:a", "--api-root", "ftp://x"],
        /--api-root: expected an http\(s\) URL/,
      ],
      [
        ["channels", "add", "telegram", "--token", "1:a", "--probe"],
        /channels add does not take --probe/,
      ],
      [["channels", "add", "telegram", "extra", "--token", "1:a"], /unexpected argument 'extra'/],
      [["channels", "logout"], /usage: gw channels logout telegram/],
      [["channels", "logout", "discord"], /gw has no discord channel yet/],
      [["pairing", "bogus"], /unknown pairing command 'bogus' \(expected list, approve, reject\)/],
      [["pairing", "list", "discord"], /gw has no discord channel yet/],
      [["pairing", "approve"], /usage: gw pairing approve CHANNEL CODE/],
      [["pairing", "approve", "telegram"], /usage: gw pairing approve CHANNEL CODE/],
      [["pairing", "reject", "telegram"], /usage: gw pairing reject CHANNEL CODE/],
      [["pairing", "approve", "telegram", "ABCD2345", "more"], /unexpected argument 'more'/],
      [["pairing", "list", "--probe"], /pairing does not take --probe/],
      [["health", "--probe"], /health does not take --probe/],
    ] as [string[], RegExp][]
  ) {
    const r = await gw(h.home, [...args, "--state-dir", state]);
    assert.equal(r.code, 2, `${args.join(" ")}: ${show(r)}`);
    assert.match(r.stderr, re, args.join(" "));
  }
  const secret = "123456:has a space in-it";
  const r = await gw(h.home, [
    "channels",
    "add",
    "telegram",
    "--token",
    secret,
    "--state-dir",
    state,
  ]);
  assert.equal(r.code, 2, show(r));
  assert.match(r.stderr, /--token: expected a bot token from @BotFather/);
  noToken(r, secret);
  assert.equal(await fileOrNull(`${state}/gw.json`), null);
});
