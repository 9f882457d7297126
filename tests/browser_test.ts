/**
 * `browser.request` over real sockets: an operator asks, the gateway forwards
 * to a node connected with the `browser.proxy` command (a real node
 * connection, signed device identity), the node answers its
 * `node.invoke.request` with `node.invoke.result`.
 */
import assert from "node:assert/strict";
import {
  type AnyFrame,
  connected,
  err,
  ok,
  type RawClient,
  signedConnected,
  startTestGateway,
} from "./_helpers.ts";

/** A node that offers `commands`, connected to `url`. */
function browserNode(
  url: string,
  commands: string[] = ["browser.proxy"],
  displayName?: string,
): Promise<RawClient> {
  return signedConnected(url, {
    role: "node",
    scopes: [],
    commands,
    caps: commands.includes("browser.proxy") ? ["browser"] : [],
    client: {
      id: "node-host",
      version: "t",
      platform: "linux",
      mode: "node",
      ...(displayName ? { displayName } : {}),
    },
  });
}

/** The next `node.invoke.request` the node receives. */
function nextInvoke(node: RawClient): Promise<AnyFrame> {
  return node.nextEvent("node.invoke.request");
}

/** The node answers an invocation. */
async function answer(node: RawClient, inv: AnyFrame, res: Record<string, unknown>): Promise<void> {
  const r = await node.request("node.invoke.result", { id: inv.payload.id, ...res });
  assert.equal(r.ok, true, JSON.stringify(r));
  assert.equal(r.payload.matched, true);
}

Deno.test("browser.request without a browser node: UNAVAILABLE saying so", async () => {
  await using gw = await startTestGateway();
  const op = await connected(gw.url, { scopes: ["operator.write"] });
  const hello = op.frames.find((f) => f.id === "connect").payload;
  assert.ok(hello.features.methods.includes("browser.request"), "advertised");
  const e = await err(op, "browser.request", { method: "GET", path: "/tabs" });
  assert.equal(e.code, "UNAVAILABLE");
  assert.equal(e.message, "no connected node offers a browser (browser.proxy)");
  assert.equal(e.details.code, "NO_BROWSER_NODE");
  // A node without browser.proxy does not count.
  const plain = await browserNode(gw.url, ["system.which"]);
  const e2 = await err(op, "browser.request", { method: "GET", path: "/tabs" });
  assert.equal(e2.message, "no connected node offers a browser (browser.proxy)");
  await plain.close();
  await op.close();
});

Deno.test("browser.request goes to the browser node and its result comes back", async (t) => {
  await using gw = await startTestGateway();
  const op = await connected(gw.url, { scopes: ["operator.write"] });
  const node = await browserNode(gw.url);

  await t.step("a GET: the node gets browser.proxy with the normalised route", async () => {
    const inv = nextInvoke(node);
    const res = op.request("browser.request", {
      method: "get",
      path: "tabs/",
      query: { profile: "work" },
      timeoutMs: 3000,
    });
    const req = await inv;
    assert.equal(req.payload.command, "browser.proxy");
    assert.deepEqual(req.payload.params, {
      method: "GET",
      path: "/tabs",
      query: { profile: "work" },
      timeoutMs: 3000,
      profile: "work",
      errorEnvelope: "browser-v1",
    });
    assert.equal(req.payload.timeoutMs, 8000, "the node has 5 s more than the browser");
    await answer(node, req, {
      ok: true,
      payload: { result: { running: true, tabs: [{ targetId: "T1", url: "https://a.example" }] } },
    });
    const r = await res;
    assert.equal(r.ok, true, JSON.stringify(r));
    assert.deepEqual(r.payload, {
      running: true,
      tabs: [{ targetId: "T1", url: "https://a.example" }],
    });
  });

  await t.step("a POST with a body, answered as JSON text", async () => {
    const inv = nextInvoke(node);
    const res = op.request("browser.request", {
      method: "POST",
      path: "/tabs/open",
      body: { url: "https://b.example" },
    });
    const req = await inv;
    assert.deepEqual(req.payload.params.body, { url: "https://b.example" });
    assert.equal(req.payload.params.timeoutMs, 20_000, "the default browser timeout");
    await answer(node, req, {
      ok: true,
      payload: JSON.stringify({ result: { ok: true, targetId: "T2" } }),
    });
    assert.deepEqual(await (await res).payload, { ok: true, targetId: "T2" });
  });

  await t.step("files the node sends are kept by gw and the result names the copies", async () => {
    const inv = nextInvoke(node);
    const res = op.request("browser.request", { method: "POST", path: "/download" });
    const req = await inv;
    const text = "downloaded text\n";
    await answer(node, req, {
      ok: true,
      payload: {
        result: { ok: true, download: { path: "/home/n/Downloads/a.txt" } },
        files: [{ path: "/home/n/Downloads/a.txt", base64: btoa(text), mimeType: "text/plain" }],
      },
    });
    const r = await res;
    assert.equal(r.ok, true, JSON.stringify(r));
    const saved = r.payload.download.path as string;
    assert.ok(saved.startsWith(`${gw.stateDir}/media/`), saved);
    assert.equal(await Deno.readTextFile(saved), text);
  });

  await t.step("a browser error (browser-v1 envelope) keeps its message and status", async () => {
    const inv = nextInvoke(node);
    const res = op.request("browser.request", { method: "DELETE", path: "/tabs/T9" });
    await answer(node, await inv, {
      ok: true,
      payload: { error: { status: 404, body: { error: "tab not found: T9" } } },
    });
    const e = (await res).error;
    assert.equal(e.code, "INVALID_REQUEST");
    assert.equal(e.message, "tab not found: T9");
    assert.equal(e.details.status, 404);
  });

  await t.step("a node that reports a failure: UNAVAILABLE with its message", async () => {
    const inv = nextInvoke(node);
    const res = op.request("browser.request", { method: "GET", path: "/snapshot" });
    await answer(node, await inv, {
      ok: false,
      error: { code: "BROWSER_DOWN", message: "browser control is disabled" },
    });
    const e = (await res).error;
    assert.equal(e.code, "UNAVAILABLE");
    assert.match(e.message, /browser control is disabled/);
    assert.equal(e.details.code, "BROWSER_DOWN");
  });

  await t.step("requests gw refuses before reaching the node", async () => {
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ method: "GET", path: "/tabs", target: "host" }, "UNAVAILABLE", /no browser on its host/],
      [{ method: "GET", path: "/dashboard" }, "INVALID_REQUEST", /gateway host/],
      [
        { method: "POST", path: "/reset-profile" },
        "INVALID_REQUEST",
        /persistent browser profiles/,
      ],
      [{ method: "DELETE", path: "/profiles/work" }, "INVALID_REQUEST", /persistent/],
      [
        { method: "POST", path: "/hooks/file-chooser", body: { paths: ["/etc/passwd"] } },
        "INVALID_REQUEST",
        /uploads are not supported/,
      ],
      [{ method: "PUT", path: "/tabs" }, "INVALID_REQUEST", /params\.method/],
      [{ method: "GET", path: "" }, "INVALID_REQUEST", /params\.path/],
    ];
    const before = node.frames.length;
    for (const [params, code, message] of cases) {
      const e = await err(op, "browser.request", params);
      assert.equal(e.code, code, JSON.stringify(params));
      assert.match(e.message, message, JSON.stringify(params));
    }
    assert.equal(
      node.frames.slice(before).filter((f) => f.event === "node.invoke.request").length,
      0,
      "nothing reached the node",
    );
  });

  await t.step("a reader may not drive the browser", async () => {
    const reader = await connected(gw.url, { scopes: ["operator.read"] });
    const e = await err(reader, "browser.request", { method: "GET", path: "/tabs" });
    assert.equal(e.code, "FORBIDDEN");
    assert.equal(e.details.missingScope, "operator.write");
    await reader.close();
  });

  await node.close();
  await op.close();
});

Deno.test("browser.request: the node disconnecting mid-request is a clear error", async () => {
  await using gw = await startTestGateway();
  const op = await connected(gw.url, { scopes: ["operator.write"] });
  const node = await browserNode(gw.url);
  const inv = nextInvoke(node);
  const res = op.request("browser.request", { method: "GET", path: "/tabs" });
  await inv;
  await node.close();
  const e = (await res).error;
  assert.equal(e.code, "UNAVAILABLE");
  assert.match(e.message, /^browser node \S+ disconnected before answering$/);
  assert.equal(e.details.code, "NODE_DISCONNECTED");
  assert.equal(e.retryable, true);
  // And with it gone, there is no browser node any more.
  const again = await err(op, "browser.request", { method: "GET", path: "/tabs" });
  assert.equal(again.details.code, "NO_BROWSER_NODE");
  await op.close();
});

Deno.test("browser.request with two browser nodes needs params.node", async () => {
  await using gw = await startTestGateway();
  const op = await connected(gw.url, { scopes: ["operator.admin"] });
  const a = await browserNode(gw.url, ["browser.proxy"], "Laptop");
  const b = await browserNode(gw.url, ["browser.proxy"], "Desktop");
  const nodes = (await ok(op, "node.list")).nodes as AnyFrame[];
  const idOf = (name: string) => nodes.find((n) => n.displayName === name).nodeId as string;

  const e = await err(op, "browser.request", { method: "GET", path: "/tabs" });
  assert.equal(e.code, "UNAVAILABLE");
  assert.equal(e.details.code, "BROWSER_NODE_AMBIGUOUS");
  assert.deepEqual([...e.details.nodes].sort(), [idOf("Laptop"), idOf("Desktop")].sort());

  for (const [selector, node] of [["desktop", b], [idOf("Laptop").slice(0, 12), a]] as const) {
    const inv = nextInvoke(node);
    const res = op.request("browser.request", { method: "GET", path: "/tabs", node: selector });
    const req = await inv;
    await answer(node, req, { ok: true, payload: { result: { node: selector } } });
    assert.deepEqual((await res).payload, { node: selector });
  }
  const none = await err(op, "browser.request", { method: "GET", path: "/", node: "kitchen" });
  assert.equal(none.details.code, "BROWSER_NODE_NOT_CONNECTED");
  assert.match(none.message, /no connected browser node matches "kitchen"/);
  await a.close();
  await b.close();
  await op.close();
});
