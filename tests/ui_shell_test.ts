/**
 * The Control UI's shell, end to end: the files and their headers (strict
 * CSP, no inline script, ETag), the generated client bundle being current,
 * and in headless Chromium: login (wrong token → words in #login-error; right
 * token → connected, paired as a device), a URL carrying a gateway URL or a
 * token (CVE-2026-25253) that the page ignores, no CSP violation, the page
 * reconnecting by itself after the gateway restarts, and 360 px without
 * sideways scrolling. Screenshots (GW_UI_SCREENSHOTS=1): login-phone,
 * login-desktop.
 */
import assert from "node:assert/strict";
import {
  type AnyFrame,
  connected,
  connectParams,
  RawClient,
  startTestGateway,
} from "./_helpers.ts";
import { DeviceIdentity } from "../lib/client/identity.ts";
import {
  consoleErrors,
  type Page,
  screenshot,
  SIZES,
  startUi,
  UI_TEST,
  wsUrls,
} from "./_browser.ts";

// page.evaluate callbacks run in the browser: its globals, for the type checker only.
// deno-lint-ignore no-explicit-any
declare const document: any, indexedDB: any, MutationObserver: any;

const ROOT = new URL("../", import.meta.url);

async function get(url: string, headers: HeadersInit = {}, method = "GET"): Promise<Response> {
  return await fetch(url, { headers, method });
}

Deno.test("UI files: the page for browsers, JSON for others, strict headers on every file", async (t) => {
  await using gw = await startTestGateway();
  const base = `http://127.0.0.1:${gw.port}`;

  await t.step("a non-browser GET / keeps the JSON answer", async () => {
    const r = await get(`${base}/`);
    assert.match(r.headers.get("content-type") ?? "", /application\/json/);
    const body = await r.json();
    assert.equal(body.name, "gw");
  });

  const files: [string, RegExp][] = [
    ["/", /^text\/html/],
    ["/app.js", /^text\/javascript/],
    ["/style.css", /^text\/css/],
    ["/gw-client.js", /^text\/javascript/],
    ["/lib/dom.js", /^text\/javascript/],
    ["/lib/fmt.js", /^text\/javascript/],
    ["/pages/chat.js", /^text\/javascript/],
    ["/favicon.svg", /^image\/svg\+xml/],
  ];
  for (const [path, type] of files) {
    await t.step(
      `${path}: content type, CSP, frame and sniffing headers, no-cache + ETag`,
      async () => {
        const r = await get(`${base}${path}`, { accept: "text/html,*/*" });
        const text = await r.text();
        assert.equal(r.status, 200, text.slice(0, 200));
        assert.match(r.headers.get("content-type") ?? "", type);
        const csp = r.headers.get("content-security-policy") ?? "";
        assert.match(csp, /default-src 'none'/);
        assert.match(csp, /script-src 'self'(;|$)/);
        assert.match(csp, /style-src 'self'(;|$)/);
        assert.match(csp, /frame-ancestors 'none'/);
        assert.match(csp, new RegExp(`connect-src 'self' ws://127\\.0\\.0\\.1:${gw.port} `));
        assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
        assert.equal(r.headers.get("x-frame-options"), "DENY");
        assert.equal(r.headers.get("x-content-type-options"), "nosniff");
        assert.equal(r.headers.get("referrer-policy"), "no-referrer");
        assert.equal(r.headers.get("cache-control"), "no-cache");
        const etag = r.headers.get("etag");
        assert.ok(etag, "an ETag");
        const again = await get(`${base}${path}`, { accept: "text/html", "if-none-match": etag });
        await again.body?.cancel();
        assert.equal(again.status, 304);
        assert.equal(again.headers.get("x-frame-options"), "DENY");
      },
    );
  }

  await t.step("HEAD answers the headers without a body", async () => {
    const r = await get(`${base}/app.js`, {}, "HEAD");
    assert.equal(r.status, 200);
    assert.equal(await r.text(), "");
    assert.ok(r.headers.get("content-security-policy"));
  });

  await t.step("index.html has no inline script, style or handler", async () => {
    const html = await (await get(`${base}/`, { accept: "text/html" })).text();
    for (const m of html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)) {
      assert.match(m[1]!, /\bsrc="\/[a-z-]+\.js"/, `script without src: ${m[0]}`);
      assert.equal(m[2]!.trim(), "", "a script element with inline code");
    }
    assert.doesNotMatch(html, /<style\b/i);
    assert.doesNotMatch(html, /\sstyle=/i);
    assert.doesNotMatch(html, /\son[a-z]+=/i);
    assert.doesNotMatch(html, /javascript:/i);
  });

  await t.step("only allowlisted paths: no traversal, no other files", async () => {
    for (
      const path of [
        "/lib/../deno.json",
        "/lib/%2e%2e/deno.json",
        "/pages/..%2fapp.js",
        "/lib/dom.ts",
        "/pages/Chat.js",
        "/index.html",
        "/ui/app.js",
        "/main.ts",
        "/lib/server/ui.ts",
        "/gw-client.js.map",
        "/pages/nope.js",
      ]
    ) {
      const r = await get(`${base}${path}`, { accept: "text/html" });
      const text = await r.text();
      assert.equal(r.status, 404, `${path}: ${r.status} ${text.slice(0, 80)}`);
      assert.doesNotMatch(text, /"name": "@gw\/gw"|import /, path);
    }
    const post = await fetch(`${base}/app.js`, { method: "POST", body: "x" });
    await post.body?.cancel();
    assert.notEqual(post.status, 200);
  });
});

Deno.test("ui/gw-client.js is the current bundle of mod.ts (deno task ui:bundle)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gw-ui-bundle-" });
  try {
    const out = `${dir}/gw-client.js`;
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["bundle", "--platform", "browser", "mod.ts", "-o", out],
      cwd: ROOT.pathname,
      stdout: "null",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
    const fresh = await Deno.readTextFile(out);
    const kept = await Deno.readTextFile(new URL("ui/gw-client.js", ROOT));
    assert.ok(
      fresh === kept,
      "ui/gw-client.js is out of date with mod.ts: run `deno task ui:bundle` and commit it",
    );
    assert.match(kept, /export \{[\s\S]*GatewayClient[\s\S]*IndexedDbIdentityStorage/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** A signed Control UI connect with the shared token, sent with a browser `Origin`. */
async function signedBrowserConnect(url: string, origin: string): Promise<AnyFrame> {
  const id = await DeviceIdentity.generate();
  const c = new RawClient(url, undefined, { headers: { origin } });
  try {
    const ch = (await c.challenge()).payload;
    const params = connectParams({
      client: { id: "openclaw-control-ui", version: "t", platform: "linux", mode: "webchat" },
    }) as AnyFrame;
    params.device = await id.sign({
      challenge: ch,
      clientId: params.client.id,
      clientMode: params.client.mode,
      role: "operator",
      scopes: params.scopes,
      token: params.auth.token,
      platform: params.client.platform,
    });
    return await c.request("connect", params, "connect");
  } finally {
    await c.close();
  }
}

Deno.test("pairing: the gateway's own page on loopback pairs silently; another origin must be approved", async () => {
  await using gw = await startTestGateway({
    config: { gateway: { allowedOrigins: ["http://app.example"] } },
  });
  const own = await signedBrowserConnect(gw.url, `http://127.0.0.1:${gw.port}`);
  assert.equal(own.ok, true, JSON.stringify(own.error));
  assert.ok(own.payload.auth.deviceToken, "a device token of its own");
  assert.ok(own.payload.auth.scopes.includes("operator.admin"));

  const other = await signedBrowserConnect(gw.url, "http://app.example");
  assert.equal(other.ok, false);
  assert.equal(other.error.details.code, "PAIRING_REQUIRED");
  // Another loopback port is another origin: refused outright.
  const port = await signedBrowserConnect(gw.url, `http://127.0.0.1:${gw.port + 1}`);
  assert.equal(port.ok, false);
  assert.equal(port.error.details.code, "CONTROL_UI_ORIGIN_NOT_ALLOWED");
});

/** The `#conn` states the page goes through from now on, recorded in the page. */
async function recordConnStates(page: Page): Promise<() => Promise<string[]>> {
  await page.evaluate(() => {
    const w = globalThis as unknown as { __conn: string[] };
    const el = document.getElementById("conn")!;
    w.__conn = [el.dataset.state ?? ""];
    new MutationObserver(() => {
      const s = el.dataset.state ?? "";
      if (w.__conn[w.__conn.length - 1] !== s) w.__conn.push(s);
    }).observe(el, { attributes: true, attributeFilter: ["data-state"] });
  });
  return () => page.evaluate(() => (globalThis as unknown as { __conn: string[] }).__conn);
}

Deno.test({
  name: "UI login: a wrong token shows words in #login-error; the right one connects and pairs",
  ...UI_TEST,
  async fn(t) {
    await using ui = await startUi();
    const page = await ui.page(SIZES.desktop);

    await t.step("the login form shows first", async () => {
      await page.waitForSelector("form#login input#token[type=password]");
      assert.equal(await page.getAttribute("#conn", "data-state"), "disconnected");
      await screenshot(page, "login-desktop");
    });

    await t.step("a wrong token: a sentence, not a code", async () => {
      await page.fill("#token", "not-the-token-0000000000");
      await page.click("form#login button[type=submit]");
      await page.waitForFunction(() => document.getElementById("login-error")?.textContent);
      const text = (await page.textContent("#login-error"))!;
      assert.match(text, /token is not right/i);
      assert.doesNotMatch(text, /AUTH_|INVALID_REQUEST/);
      assert.equal(await page.isVisible("form#login"), true);
      assert.notEqual(await page.getAttribute("#conn", "data-state"), "connected");
    });

    await t.step("the right token connects; kept in sessionStorage, not localStorage", async () => {
      await ui.login(page);
      assert.match((await page.textContent("#conn .label"))!, /connected/i);
      await page.waitForSelector('main#page[data-page="chat"]');
      assert.equal(await page.isVisible("form#login"), false);
      assert.equal(await page.textContent("#login-error"), "");
      const stored = await page.evaluate(() => [
        sessionStorage.getItem("gw.token"),
        localStorage.getItem("gw.token"),
      ]);
      assert.deepEqual(stored, [ui.t.token, null]);
      assert.equal(await page.inputValue("#token"), "", "the typed token is cleared");
    });

    await t.step("the page paired itself as a device with its own token", async () => {
      const c = await connected(ui.t.url);
      try {
        const res = await c.request("device.pair.list", {});
        assert.equal(res.ok, true, JSON.stringify(res));
        const ui_ = res.payload.paired.filter((d: { clientId?: string }) =>
          d.clientId === "openclaw-control-ui"
        );
        assert.equal(ui_.length, 1, JSON.stringify(res.payload.paired));
        const idb = await page.evaluate(() =>
          new Promise<number>((resolve, reject) => {
            const r = indexedDB.open("gw-identity");
            r.onerror = () => reject(r.error);
            r.onsuccess = () => {
              const tx = r.result.transaction(r.result.objectStoreNames[0]!, "readonly");
              const q = tx.objectStore(r.result.objectStoreNames[0]!).count();
              q.onsuccess = () => resolve(q.result);
              q.onerror = () => reject(q.error);
            };
          })
        );
        assert.ok(idb >= 2, `identity and device token in IndexedDB, got ${idb} entries`);
      } finally {
        await c.close();
      }
    });

    await t.step(
      "a reload connects again without the form (this tab's token, device token)",
      async () => {
        await page.reload();
        await ui.waitConn(page, "connected");
        assert.equal(await page.isVisible("form#login"), false);
      },
    );

    await t.step("navigation: nav links switch main#page", async () => {
      await page.click('nav a[data-page="chat"]');
      await page.waitForSelector('main#page[data-page="chat"]');
      assert.equal(await page.getAttribute('nav a[data-page="chat"]', "aria-current"), "page");
    });

    await t.step("log out forgets the token and shows the form", async () => {
      await page.click("#logout");
      await page.waitForSelector("form#login", { state: "visible" });
      const stored = await page.evaluate(() => [
        sessionStorage.getItem("gw.token"),
        localStorage.getItem("gw.token"),
      ]);
      assert.deepEqual(stored, [null, null]);
    });

    await t.step("remember keeps the token in localStorage", async () => {
      await ui.login(page, ui.t.token, { remember: true });
      assert.equal(await page.evaluate(() => localStorage.getItem("gw.token")), ui.t.token);
    });

    assert.deepEqual(consoleErrors(page).filter((e) => !/401|status of 4\d\d/.test(e)), []);
  },
});

Deno.test({
  name:
    "CVE-2026-25253: a gateway URL or token in the query or hash is never used; sockets go only to the page's origin",
  ...UI_TEST,
  async fn() {
    // A listener that stands for "elsewhere": nothing may ever connect to it.
    let elsewhereHits = 0;
    const elsewhere = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
      elsewhereHits++;
      if (req.headers.get("upgrade") === "websocket") {
        const { response, socket } = Deno.upgradeWebSocket(req);
        socket.onopen = () => socket.close();
        return response;
      }
      return new Response("elsewhere");
    });
    try {
      await using ui = await startUi();
      const other = `ws://127.0.0.1:${elsewhere.addr.port}`;
      const page = await ui.page({
        path: `/?gatewayUrl=${encodeURIComponent(other)}&token=${ui.t.token}` +
          `&gateway=${encodeURIComponent(other)}#token=${ui.t.token}&gatewayUrl=${other}`,
      });
      // The token in the URL is not used: the page asks for one.
      await page.waitForSelector("form#login", { state: "visible" });
      await page.waitForTimeout(500);
      assert.notEqual(await page.getAttribute("#conn", "data-state"), "connected");
      assert.deepEqual(wsUrls(page), [], "no socket before a token is typed");
      assert.deepEqual(
        await page.evaluate(() => [sessionStorage.length, localStorage.length]),
        [0, 0],
        "nothing from the URL was stored",
      );

      await ui.login(page);
      await page.waitForSelector('main#page[data-page="chat"]');
      const own = `ws://127.0.0.1:${ui.t.port}`;
      const urls = wsUrls(page);
      assert.ok(urls.length >= 1);
      for (const u of urls) assert.equal(new URL(u).origin, new URL(own).origin, u);
      assert.equal(elsewhereHits, 0, "the page contacted the other server");

      // A hash that is not a page id does not change where the page connects either.
      await page.evaluate((o) => (location.hash = `#/chat?gatewayUrl=${o}`), other);
      await page.reload();
      await ui.waitConn(page, "connected");
      for (const u of wsUrls(page)) assert.equal(new URL(u).origin, new URL(own).origin, u);
      assert.equal(elsewhereHits, 0);
    } finally {
      await elsewhere.shutdown();
    }
  },
});

Deno.test({
  name: "UI under its CSP: no violation and no page error while logging in and using the chat",
  ...UI_TEST,
  async fn() {
    await using ui = await startUi();
    const page = await ui.page();
    const violations: string[] = [];
    await page.exposeFunction("__cspViolation", (v: string) => violations.push(v));
    await page.addInitScript(() => {
      // deno-lint-ignore no-explicit-any
      document.addEventListener("securitypolicyviolation", (e: any) => {
        (globalThis as unknown as { __cspViolation(v: string): void }).__cspViolation(
          `${e.violatedDirective} ${e.blockedURI}`,
        );
      });
    });
    await page.reload();
    await ui.login(page);
    await page.waitForSelector('main#page[data-page="chat"] [data-testid="chat-input"]');
    await page.fill('[data-testid="session-search"]', "x");
    await page.waitForTimeout(400);
    assert.deepEqual(violations, []);
    assert.deepEqual(consoleErrors(page), []);
  },
});

Deno.test({
  name: "UI reconnects by itself after the gateway restarts (disconnected → connected)",
  ...UI_TEST,
  async fn() {
    await using ui = await startUi();
    const page = await ui.page();
    await ui.login(page);
    await page.waitForSelector('main#page[data-page="chat"]');
    const states = await recordConnStates(page);
    const sockets = wsUrls(page).length;

    await ui.restart();
    // Wait for the whole story, not just "connected": right after the restart the
    // page may not have seen its old socket close yet and still says connected.
    const deadline = Date.now() + 15_000;
    let seen = await states();
    while (
      !(seen.includes("disconnected") && seen.at(-1) === "connected") && Date.now() < deadline
    ) {
      await new Promise((r) => setTimeout(r, 100));
      seen = await states();
    }
    await ui.waitConn(page, "connected", 1_000);
    const d = seen.indexOf("disconnected");
    assert.ok(d >= 0, `went through disconnected: ${seen.join(" → ")}`);
    assert.equal(seen.at(-1), "connected", seen.join(" → "));
    assert.ok(wsUrls(page).length > sockets, "a new socket was opened");
    // Still usable: the chat page answers from the new gateway.
    await page.waitForSelector('main#page[data-page="chat"] [data-testid="session-list"]');
    assert.equal(await page.isVisible("form#login"), false);
  },
});

Deno.test({
  name: "UI at 360 px: the login and the shell have no sideways scrolling",
  ...UI_TEST,
  async fn() {
    await using ui = await startUi();
    const page = await ui.page(SIZES.phone);
    await page.waitForSelector("form#login", { state: "visible" });
    await page.fill("#token", "wrong-token-0000000000000");
    await page.click("form#login button[type=submit]");
    await page.waitForFunction(() => document.getElementById("login-error")?.textContent);
    const width = () => page.evaluate(() => document.scrollingElement!.scrollWidth);
    assert.ok((await width()) <= 360, `login: ${await width()} px`);
    await page.fill("#token", "");
    await page.evaluate(() => (document.getElementById("login-error")!.textContent = ""));
    await screenshot(page, "login-phone");
    await ui.login(page);
    await page.waitForSelector('main#page[data-page="chat"] [data-testid="chat-input"]');
    assert.ok((await width()) <= 360, `shell: ${await width()} px`);
  },
});
