/**
 * `gw node` and `gw nodes` end to end: a real gateway in this process, the
 * node host as a child process run exactly as the binary runs it
 * (`deno run -P=gw main.ts node ...`, clean environment), and operators over
 * raw sockets and the CLI.
 */
import assert from "node:assert/strict";
import {
  type AnyFrame,
  gwRunArgs,
  ok,
  type RawClient,
  sockets,
  startTestGateway,
} from "./_helpers.ts";
import { childEnv, json, okRun, type RunResult, show } from "./_cli.ts";

const ROOT = new URL("../", import.meta.url).pathname;

/** Run `gw <args>` to completion, killed after `timeoutMs`. */
async function gw(home: string, args: string[], timeoutMs = 20_000): Promise<RunResult> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: gwRunArgs(...args),
    cwd: ROOT,
    env: await childEnv(home),
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(timeoutMs),
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** `gw node ...` running in the background, its stderr collected as it comes. */
class NodeChild implements AsyncDisposable {
  readonly child: Deno.ChildProcess;
  stderr = "";
  readonly #drained: Promise<void>;

  constructor(home: string, env: Record<string, string>, args: string[]) {
    const child = new Deno.Command(Deno.execPath(), {
      args: gwRunArgs("node", ...args),
      cwd: ROOT,
      env: { ...env, HOME: home },
      clearEnv: true,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    this.child = child;
    const dec = new TextDecoder();
    this.#drained = (async () => {
      for await (const chunk of child.stderr) this.stderr += dec.decode(chunk);
    })().catch(() => {});
  }

  kill(signal: Deno.Signal): void {
    try {
      this.child.kill(signal);
    } catch { /* gone already */ }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.kill("SIGKILL");
    await this.child.status;
    await this.#drained;
  }
}

/** Poll `fn` until it returns a value, or fail after `ms` saying what did not happen. */
async function until<T>(fn: () => Promise<T | undefined>, ms: number, what: string): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function nodeList(c: RawClient): Promise<AnyFrame[]> {
  return (await ok(c, "node.list", {})).nodes;
}

function invoke(c: RawClient, nodeId: string, command: string, params: unknown = {}) {
  return c.request("node.invoke", {
    nodeId,
    command,
    params,
    idempotencyKey: crypto.randomUUID(),
  });
}

Deno.test("gw node pairs on loopback, serves system.*, and goes away when killed", async (t) => {
  await using gwy = await startTestGateway();
  await using socks = sockets();
  const home = await Deno.makeTempDir({ prefix: "gw-node-home-" });
  const stateDir = `${home}/node-state`;
  const env = await childEnv(home);
  const op = await socks.connected(gwy.url);
  let node: NodeChild | undefined;
  try {
    node = new NodeChild(home, env, [
      ...["--url", gwy.url, "--token", gwy.token, "--state-dir", stateDir, "--name", "test-node"],
    ]);
    let nodeId = "";

    await t.step("the node is paired silently on loopback and listed as connected", async () => {
      const n = await until(
        async () => (await nodeList(op)).find((n) => n.connected),
        30_000,
        "a connected node in node.list",
      ).catch((e) => {
        throw new Error(`${e.message}\n--- node stderr\n${node!.stderr}`);
      });
      nodeId = n.nodeId;
      assert.equal(n.displayName, "test-node");
      assert.deepEqual([...n.commands].sort(), ["system.info", "system.run", "system.which"]);
      assert.ok(n.paired, "paired");
      const tokens = JSON.parse(await Deno.readTextFile(`${stateDir}/identity/tokens.json`));
      const stored = Object.values(tokens.tokens) as { role: string }[];
      assert.equal(stored[0]?.role, "node", "the node keeps its device token");
      assert.doesNotMatch(node!.stderr, /Waiting for approval/);
    });

    await t.step("system.which finds echo, system.info says what the node is", async () => {
      const which = await invoke(op, nodeId, "system.which", { name: "echo" });
      assert.equal(which.ok, true, JSON.stringify(which.error));
      assert.match(which.payload.payload.path, /^\/.*echo$/);
      const none = await invoke(op, nodeId, "system.which", { name: "no-such-binary-gw" });
      assert.equal(none.payload.payload.path, null);
      const info = await invoke(op, nodeId, "system.info");
      assert.equal(info.ok, true, JSON.stringify(info.error));
      assert.equal(info.payload.payload.os, Deno.build.os);
      assert.equal(typeof info.payload.payload.hostname, "string");
    });

    await t.step("system.run asks for approval; allow-once runs it on the node", async () => {
      const pending = invoke(op, nodeId, "system.run", { argv: ["echo", "hi"] });
      const ask = await op.next(
        (f) => f.event === "exec.approval.requested" && f.payload.nodeId === nodeId,
        10_000,
      );
      assert.match(ask.payload.request.binary, /echo$/);
      await ok(op, "exec.approval.resolve", { id: ask.payload.id, decision: "allow-once" });
      const res = await pending;
      assert.equal(res.ok, true, JSON.stringify(res.error));
      assert.equal(res.payload.payload.stdout, "hi\n");
      assert.equal(res.payload.payload.exitCode, 0);
      assert.equal(res.payload.payload.timedOut, false);
    });

    await t.step("system.run denied: an error, and nothing runs", async () => {
      const before = op.frames.length;
      const pending = invoke(op, nodeId, "system.run", { argv: ["echo", "no"] });
      const ask = await op.next(
        (f) =>
          f.event === "exec.approval.requested" && f.payload.nodeId === nodeId &&
          op.frames.indexOf(f) >= before,
        10_000,
      );
      await ok(op, "exec.approval.resolve", { id: ask.payload.id, decision: "deny" });
      const res = await pending;
      assert.equal(res.ok, false);
      assert.equal(res.error.details?.code, "EXEC_DENIED");
      assert.equal(node!.stderr.match(/system\.run \S+: ok/g)?.length, 1, node!.stderr);
    });

    await t.step("gw nodes list and invoke from the CLI", async () => {
      const conn = ["--url", gwy.url, "--token", gwy.token];
      const list = okRun(await gw(home, ["nodes", "list", ...conn]), "nodes list");
      assert.match(list.stdout, /test-node/);
      assert.match(list.stdout, new RegExp(nodeId.slice(0, 8)));
      assert.match(list.stdout, /connected/);
      const listJson = json(okRun(await gw(home, ["nodes", "--json", ...conn]), "nodes --json"));
      assert.ok(listJson.nodes.some((n: AnyFrame) => n.nodeId === nodeId), show(list));
      const which = okRun(
        await gw(home, [
          "nodes",
          "invoke",
          nodeId.slice(0, 10),
          "system.which",
          '{"name":"echo"}',
          ...conn,
        ]),
        "nodes invoke",
      );
      assert.match(json(which).path, /echo$/);
    });

    await t.step(
      "killed mid-invoke: the invocation fails at once, not at its timeout",
      async () => {
        const pending = op.request("node.invoke", {
          nodeId,
          command: "system.run",
          params: { argv: ["sleep", "30"] },
          timeoutMs: 60_000,
          idempotencyKey: crypto.randomUUID(),
        });
        const ask = await op.next(
          (f) =>
            f.event === "exec.approval.requested" && f.payload.nodeId === nodeId &&
            f.payload.request.argv.includes("30"),
          10_000,
        );
        await ok(op, "exec.approval.resolve", { id: ask.payload.id, decision: "allow-once" });
        await new Promise((r) => setTimeout(r, 500));
        const killedAt = Date.now();
        node!.kill("SIGKILL");
        await node!.child.status;
        const res = await pending;
        assert.equal(res.ok, false);
        assert.equal(res.error.details.code, "NODE_DISCONNECTED");
        assert.ok(Date.now() - killedAt < 5_000, "failed at the disconnect, not at the timeout");
      },
    );

    await t.step("killed, the node is offline and node.invoke answers NOT_LINKED", async () => {
      await until(
        async () => (await nodeList(op)).find((n) => n.nodeId === nodeId && !n.connected),
        10_000,
        "the node offline in node.list",
      );
      const res = await invoke(op, nodeId, "system.info");
      assert.equal(res.ok, false);
      assert.equal(res.error.code, "NOT_LINKED");
    });

    await t.step(
      "restarted without --token, the node reconnects with its device token",
      async () => {
        await node![Symbol.asyncDispose]();
        node = new NodeChild(home, env, ["--url", gwy.url, "--state-dir", stateDir]);
        await until(
          async () => (await nodeList(op)).find((n) => n.nodeId === nodeId && n.connected),
          30_000,
          "the node connected again",
        ).catch((e) => {
          throw new Error(`${e.message}\n--- node stderr\n${node!.stderr}`);
        });
        node.kill("SIGTERM");
        const status = await node.child.status;
        assert.equal(status.code, 0, node.stderr);
        assert.match(node.stderr, /node stopped/);
      },
    );
  } finally {
    await node?.[Symbol.asyncDispose]();
    await Deno.remove(home, { recursive: true }).catch(() => {});
  }
});

/** A non-loopback IPv4 address of this machine, or undefined. */
function lanAddress(): string | undefined {
  try {
    return Deno.networkInterfaces().find((i) =>
      i.family === "IPv4" && !i.address.startsWith("127.")
    )?.address;
  } catch {
    return undefined;
  }
}

const LAN = lanAddress();

Deno.test({
  name: "gw node off loopback waits for gw nodes approve, then serves",
  ignore: LAN === undefined,
  fn: async () => {
    await using gwy = await startTestGateway({ bind: "0.0.0.0" });
    await using socks = sockets();
    const home = await Deno.makeTempDir({ prefix: "gw-node-pair-" });
    const env = await childEnv(home);
    const op = await socks.connected(gwy.url);
    const remote = `ws://${LAN}:${gwy.port}`;
    const node = new NodeChild(home, env, [
      ...["--url", remote, "--token", gwy.token, "--state-dir", `${home}/node-state`],
    ]);
    try {
      const requestId = await until(
        () =>
          Promise.resolve(
            /Waiting for approval: on the gateway run `gw nodes approve (\S+)`/.exec(node.stderr)
              ?.[1],
          ),
        30_000,
        "the approval hint on the node's stderr",
      ).catch((e) => {
        throw new Error(`${e.message}\n--- node stderr\n${node.stderr}`);
      });
      assert.equal((await nodeList(op)).filter((n) => n.connected).length, 0);
      // Let it retry at least once: the hint is printed once per request.
      await new Promise((r) => setTimeout(r, 2500));
      assert.equal(node.stderr.match(/Waiting for approval/g)?.length, 1, node.stderr);
      const conn = ["--url", gwy.url, "--token", gwy.token];
      const listed = okRun(await gw(home, ["nodes", "list", ...conn]), "nodes list");
      assert.match(listed.stdout, new RegExp(requestId.slice(0, 8)));
      const r = okRun(
        await gw(home, ["nodes", "approve", requestId.slice(0, 10), ...conn]),
        "nodes approve",
      );
      assert.match(r.stdout, /approved/);
      const n = await until(
        async () => (await nodeList(op)).find((n) => n.connected),
        15_000,
        "the approved node connected",
      ).catch((e) => {
        throw new Error(`${e.message}\n--- node stderr\n${node.stderr}`);
      });
      const info = await invoke(op, n.nodeId, "system.info");
      assert.equal(info.payload.payload.os, Deno.build.os);
    } finally {
      await node[Symbol.asyncDispose]();
      await Deno.remove(home, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test("gw nodes usage errors exit 2", async () => {
  const home = await Deno.makeTempDir({ prefix: "gw-node-usage-" });
  try {
    const cases: [string[], RegExp][] = [
      [["nodes", "frob"], /unknown nodes command/],
      [["nodes", "invoke", "abc"], /usage: gw nodes invoke/],
      [["nodes", "invoke", "abc", "system.which", "{nope"], /params must be JSON/],
      [["nodes", "approve"], /usage: gw nodes approve/],
      [["node", "extra"], /node takes no arguments/],
      [["node", "--json"], /node does not take --json/],
    ];
    for (const [args, re] of cases) {
      const r = await gw(home, [...args, "--url", "ws://127.0.0.1:9"]);
      assert.equal(r.code, 2, `${args.join(" ")}: ${show(r)}`);
      assert.match(r.stderr, re, `${args.join(" ")}: ${show(r)}`);
    }
  } finally {
    await Deno.remove(home, { recursive: true }).catch(() => {});
  }
});

Deno.test("one machine: gw start, gw node and gw approvals; the agent's command on the node is approved in the terminal and its output reaches the chat", async () => {
  const { GwChild } = await import("./_gw_child.ts");
  const { startFakeAnthropic } = await import("./_fake_anthropic.ts");
  const { connected } = await import("./_helpers.ts");
  const fake = await startFakeAnthropic({ apiKey: "k" });
  const home = await Deno.makeTempDir({ prefix: "gw-e2e-home-" });
  const stateDir = `${home}/gateway`;
  await Deno.mkdir(stateDir);
  await Deno.writeTextFile(
    `${stateDir}/gw.json`,
    JSON.stringify({
      agents: { defaults: { model: "anthropic/claude-sonnet-4-6" } },
      models: { providers: { anthropic: { apiKey: "k", baseUrl: fake.url } } },
    }),
  );
  const env = await childEnv(home);
  await using gateway = await GwChild.start(stateDir);
  const token = (await Deno.readTextFile(`${stateDir}/token`).catch(() => "")).trim() ||
    (await import("./_helpers.ts")).TEST_TOKEN;
  await using _node = new NodeChild(home, env, [
    ...["--url", gateway.url, "--token", token, "--state-dir", `${home}/node`, "--name", "e2e"],
  ]);
  const op = await connected(gateway.url);
  // The approver: gw approvals, answering "y" to the first card.
  const approver = new Deno.Command(Deno.execPath(), {
    args: gwRunArgs("approvals", "--once", "--url", gateway.url, "--token", token),
    cwd: ROOT,
    env,
    clearEnv: true,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  try {
    const nodeId = await until(
      async () => (await nodeList(op)).find((n) => n.connected)?.nodeId as string | undefined,
      15_000,
      "the node connected",
    );
    let calls = 0;
    fake.script(() =>
      calls++ === 0
        ? {
          blocks: [{
            type: "tool_use",
            name: "exec",
            input: { argv: ["echo", "from-the-node"], node: nodeId },
          }],
        }
        : { blocks: [{ type: "text", text: "The node says hello." }] }
    );
    // The approver is watching before the request is made.
    const reader = approver.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let shown = "";
    while (!shown.includes("watching")) {
      const { value, done } = await reader.read();
      if (done) break;
      shown += value;
    }
    await ok(op, "chat.send", {
      sessionKey: "main",
      message: "ask the node",
      idempotencyKey: "e2e-1",
    });
    while (!/allow once/i.test(shown)) {
      const { value, done } = await reader.read();
      if (done) break;
      shown += value;
    }
    const w = approver.stdin.getWriter();
    await w.write(new TextEncoder().encode("y\n"));
    await w.close();
    const fin = await op.next(
      (f) => f.event === "chat" && f.payload.runId === "e2e-1" && f.payload.state !== "delta",
      20_000,
    );
    assert.equal(fin.payload.state, "final", JSON.stringify(fin.payload));
    assert.equal(fin.payload.message.content[0].text, "The node says hello.");
    const toolResult = JSON.stringify(fake.requests[1]!.body.messages);
    assert.match(toolResult, /from-the-node/);
    assert.match(toolResult, /exit 0/);
    assert.match(shown, /echo/);
    assert.equal((await approver.status).code, 0);
    reader.releaseLock();
  } finally {
    try {
      approver.kill("SIGKILL");
    } catch { /* exited */ }
    await approver.status;
    await approver.stderr.cancel().catch(() => {});
    await approver.stdout.cancel().catch(() => {});
    await op.close();
    await fake.close();
  }
});
