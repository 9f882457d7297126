/**
 * Hostile clients against a real gateway, for what tests/handshake_test.ts and
 * tests/auth_test.ts do not already cover (those cover: pre-auth frames over
 * 64 KiB → 1009, the handshake timeout, the per-IP pre-auth cap with a small
 * limit, and the auth lockout under brute force: "auth failures from one
 * address lock it out, even for the right token", "concurrent wrong guesses
 * cannot exceed maxFailures before the lockout applies").
 *
 * Here: oversized frames after auth; slowloris (half-sent HTTP upgrades, and
 * sockets that upgrade and never send connect) while a legitimate client is
 * served; 2,000 upgrade attempts from one address (the default cap of 32 holds,
 * 127.0.0.2 is still served); a connection flood with `health` latency
 * measured during it; a client that never reads its socket while events flood
 * (dropped as a slow consumer, a reading client unaffected). Raw TCP clients
 * speaking WebSocket (`Deno.connect`, or `node:net` to pick 127.0.0.2 as the
 * source address) give full control over what is sent and read.
 */
import assert from "node:assert/strict";
import net from "node:net";
import { type AnyFrame, connected, connectParams, sockets, startTestGateway } from "./_helpers.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A masked client text frame. */
function wsFrame(text: string): Uint8Array {
  const body = enc.encode(text);
  const n = body.length;
  const head = n < 126 ? 2 : n < 65536 ? 4 : 10;
  const out = new Uint8Array(head + 4 + n);
  out[0] = 0x81;
  if (n < 126) out[1] = 0x80 | n;
  else if (n < 65536) {
    out[1] = 0x80 | 126;
    out[2] = n >> 8;
    out[3] = n & 0xff;
  } else {
    out[1] = 0x80 | 127;
    new DataView(out.buffer).setBigUint64(2, BigInt(n));
  }
  const mask = crypto.getRandomValues(new Uint8Array(4));
  out.set(mask, head);
  for (let i = 0; i < n; i++) out[head + 4 + i] = body[i]! ^ mask[i & 3]!;
  return out;
}

function upgradeRequest(port: number): string {
  return `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
    `Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n` +
    `Sec-WebSocket-Version: 13\r\n\r\n`;
}

/** A WebSocket client over a raw TCP socket: reads only when told to. */
class RawWs {
  buf = new Uint8Array(0);
  status = 0;
  constructor(readonly conn: Deno.Conn) {}

  static async open(port: number): Promise<RawWs> {
    const c = new RawWs(await Deno.connect({ hostname: "127.0.0.1", port }));
    await c.conn.write(enc.encode(upgradeRequest(port)));
    while (!dec.decode(c.buf).includes("\r\n\r\n")) await c.#fill();
    const text = dec.decode(c.buf);
    c.status = Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1] ?? 0);
    c.buf = c.buf.slice(enc.encode(text.slice(0, text.indexOf("\r\n\r\n") + 4)).length);
    return c;
  }

  async #fill(): Promise<void> {
    const chunk = new Uint8Array(65536);
    const n = await this.conn.read(chunk);
    if (n === null) throw new Error("eof");
    const next = new Uint8Array(this.buf.length + n);
    next.set(this.buf);
    next.set(chunk.subarray(0, n), this.buf.length);
    this.buf = next;
  }

  /** The next text frame's JSON (close frames throw with their code). */
  async frame(): Promise<AnyFrame> {
    for (;;) {
      if (this.buf.length >= 2) {
        let len = this.buf[1]! & 0x7f;
        let off = 2;
        if (len === 126 && this.buf.length >= 4) {
          (len = (this.buf[2]! << 8) | this.buf[3]!), off = 4;
        } else if (len === 127 && this.buf.length >= 10) {
          len = Number(new DataView(this.buf.buffer, this.buf.byteOffset).getBigUint64(2));
          off = 10;
        }
        if ((len < 126 || off > 2) && this.buf.length >= off + len) {
          const op = this.buf[0]! & 0x0f;
          const body = this.buf.slice(off, off + len);
          this.buf = this.buf.slice(off + len);
          if (op === 8) throw new Error(`closed ${(body[0]! << 8) | body[1]!}`);
          if (op === 1) return JSON.parse(dec.decode(body));
          continue;
        }
      }
      await this.#fill();
    }
  }

  send(obj: unknown): Promise<number> {
    return this.conn.write(wsFrame(JSON.stringify(obj)));
  }

  close(): void {
    try {
      this.conn.close();
    } catch { /* closed */ }
  }
}

/** Upgrade from `localAddress` (node:net can bind the source address): status code, socket. */
function upgradeFrom(
  port: number,
  localAddress: string,
): Promise<{ status: number; challenge: boolean; sock: net.Socket }> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: "127.0.0.1", port, localAddress });
    let text = "";
    const timer = setTimeout(() => reject(new Error("no upgrade answer in 5 s")), 5000);
    sock.on("error", (e) => (clearTimeout(timer), reject(e)));
    sock.on("connect", () => sock.write(upgradeRequest(port)));
    sock.on("data", (d: Uint8Array) => {
      text += dec.decode(d);
      const status = Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1] ?? 0);
      if (!status || !text.includes("\r\n\r\n")) return;
      if (status !== 101 || text.includes("connect.challenge")) {
        clearTimeout(timer);
        resolve({ status, challenge: text.includes("connect.challenge"), sock });
      }
    });
  });
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN;
}

// ---------------------------------------------------------------------------------------------

Deno.test("an oversized frame after auth closes that socket 1009; others are unaffected", async () => {
  await using gw = await startTestGateway({ config: { gateway: { maxPayload: 128 * 1024 } } });
  await using s = sockets();
  const big = await s.connected(gw.url);
  const other = await s.connected(gw.url);
  // Under the cap: answered.
  const under = await big.request("health", { pad: "x".repeat(100 * 1024) });
  assert.ok(under.type === "res");
  big.send({ type: "req", id: "huge", method: "health", params: { pad: "x".repeat(200 * 1024) } });
  const close = await big.closed;
  assert.equal(close.code, 1009);
  assert.equal(big.frames.some((f) => f.id === "huge"), false);
  // Multi-byte characters count as bytes: 50,000 × "€" is 150 KB.
  const third = await s.connected(gw.url);
  third.send({ type: "req", id: "euro", method: "health", params: { pad: "€".repeat(50_000) } });
  assert.equal((await third.closed).code, 1009);
  assert.equal((await other.request("health")).ok, true);
  assert.equal(other.isClosed, false);
});

Deno.test("slowloris: half-sent upgrades and silent sockets do not block a legitimate client", async () => {
  await using gw = await startTestGateway({
    config: { gateway: { handshakeTimeoutMs: 500, maxPreauthPerIp: 32 } },
  });
  // 100 sockets that dribble an upgrade request and never finish its headers.
  const dribblers: Deno.Conn[] = [];
  for (let i = 0; i < 100; i++) {
    const c = await Deno.connect({ hostname: "127.0.0.1", port: gw.port });
    await c.write(enc.encode("GET / HTTP/1.1\r\nHost: x\r\n"));
    dribblers.push(c);
  }
  const dribble = setInterval(() => {
    for (const c of dribblers) c.write(enc.encode("X-A: b\r\n")).catch(() => {});
  }, 100);
  // 32 sockets that upgrade and never send connect: they fill this address's pre-auth slots.
  const silent: RawWs[] = [];
  try {
    for (let i = 0; i < 32; i++) silent.push(await RawWs.open(gw.port));
    assert.ok(silent.every((w) => w.status === 101));
    // The 33rd from the same address is refused; another loopback address is served.
    const extra = await RawWs.open(gw.port);
    assert.equal(extra.status, 429);
    extra.close();
    const other = await upgradeFrom(gw.port, "127.0.0.2");
    assert.equal(other.status, 101);
    assert.equal(other.challenge, true);
    other.sock.destroy();
    // The handshake timeout closes the silent ones (close 1000 after the challenge).
    const closes = await Promise.all(silent.map(async (w) => {
      const ch = await w.frame();
      assert.equal(ch.event, "connect.challenge");
      try {
        await w.frame();
        return "frame";
      } catch (e) {
        return (e as Error).message;
      }
    }));
    assert.ok(closes.every((c) => c === "closed 1000"), JSON.stringify(closes.slice(0, 3)));
    // Slots are free again: a legitimate client connects while the dribblers still dribble.
    const t0 = performance.now();
    const legit = await connected(gw.url);
    assert.equal((await legit.request("health")).ok, true);
    assert.ok(performance.now() - t0 < 2000, "the legitimate connect took over 2 s");
    await legit.close();
  } finally {
    clearInterval(dribble);
    for (const c of dribblers) {
      try {
        c.close();
      } catch { /* closed */ }
    }
    for (const w of silent) w.close();
  }
});

Deno.test("2,000 upgrade attempts from one address: exactly 32 pre-auth sockets, 127.0.0.2 still served", async () => {
  await using gw = await startTestGateway();
  const held: RawWs[] = [];
  const statuses = new Map<number, number>();
  try {
    for (let wave = 0; wave < 20; wave++) {
      const socks = await Promise.all(
        Array.from({ length: 100 }, () => RawWs.open(gw.port)),
      );
      for (const w of socks) {
        statuses.set(w.status, (statuses.get(w.status) ?? 0) + 1);
        if (w.status === 101) held.push(w);
        else w.close();
      }
    }
    assert.equal(statuses.get(101), 32, JSON.stringify([...statuses]));
    assert.equal(statuses.get(429), 2000 - 32, JSON.stringify([...statuses]));
    const other = await upgradeFrom(gw.port, "127.0.0.2");
    assert.equal(other.status, 101);
    assert.equal(other.challenge, true);
    other.sock.destroy();
  } finally {
    for (const w of held) w.close();
  }
  // Closing the held sockets frees the slots.
  const c = await connected(gw.url);
  assert.equal((await c.request("health")).ok, true);
  await c.close();
});

Deno.test("connection flood: 600+ handshakes from 16 clients while health latency is measured", async () => {
  await using gw = await startTestGateway();
  const probe = await connected(gw.url);
  const latencies: number[] = [];
  let flooding = true;
  const measuring = (async () => {
    while (flooding) {
      const t0 = performance.now();
      const res = await probe.request("health");
      assert.equal(res.ok, true);
      latencies.push(performance.now() - t0);
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  const started = performance.now();
  let done = 0;
  let refused = 0;
  const worker = async () => {
    while (done + refused < 600) {
      try {
        const c = await connected(gw.url);
        done++;
        await c.close();
      } catch {
        refused++;
      }
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  const secs = (performance.now() - started) / 1000;
  flooding = false;
  await measuring;
  const p50 = percentile(latencies, 0.5);
  const p99 = percentile(latencies, 0.99);
  console.log(
    `flood: ${done} handshakes in ${secs.toFixed(1)} s (${(done / secs).toFixed(0)}/s), ` +
      `${refused} refused; health p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms ` +
      `(${latencies.length} samples)`,
  );
  assert.equal(refused, 0, "16 concurrent clients stay under the pre-auth cap");
  assert.ok(latencies.length >= 5);
  assert.ok(p99 < 500, `health p99 ${p99} ms during the flood`);
  assert.equal(probe.isClosed, false);
  await probe.close();
});

Deno.test("a client that never reads is dropped at maxBufferedBytes; a reading client is unaffected", async () => {
  await using gw = await startTestGateway({ config: { gateway: { maxBufferedBytes: 65_536 } } });
  // The slow client: handshake over raw TCP, then it never reads again.
  const slow = await RawWs.open(gw.port);
  assert.equal(slow.status, 101);
  assert.equal((await slow.frame()).event, "connect.challenge");
  await slow.send({ type: "req", id: "c", method: "connect", params: connectParams() });
  assert.equal((await slow.frame()).ok, true);
  const reader = await connected(gw.url);
  const writer = await connected(gw.url);
  const triggers = Array.from({ length: 32 }, (_, i) => `${i}`.padEnd(64, "w"));
  // Flood voicewake.changed (not droppable): ~2.2 KB each, 6,000 of them (~13 MB), far past
  // what the kernel's socket buffers hold for a reader that never reads.
  let seen = 0;
  const counting = (async () => {
    for (;;) {
      await reader.nextEvent("voicewake.changed", 30_000);
      seen++;
      reader.frames.length = 0;
      if (seen >= 6000) return;
    }
  })();
  for (let round = 0; round < 120; round++) {
    await Promise.all(
      Array.from({ length: 50 }, () => writer.request("voicewake.set", { triggers })),
    );
    writer.frames.length = 0;
  }
  // Now read the slow socket: what the kernel held, then the gateway's close.
  const end = await Promise.race([
    (async () => {
      try {
        for (;;) await slow.frame();
      } catch (e) {
        return (e as Error).message;
      }
    })(),
    new Promise<string>((r) => setTimeout(() => r("still open after 10 s"), 10_000)),
  ]);
  assert.equal(end, "closed 1008", "the gateway closes a slow consumer with 1008");
  // The reading client got every event and is still open.
  await counting;
  assert.equal(seen, 6000);
  assert.equal(reader.isClosed, false);
  const next = reader.nextEvent("voicewake.changed");
  await writer.request("voicewake.set", { triggers: ["after"] });
  assert.deepEqual((await next).payload.triggers, ["after"]);
  slow.close();
  await reader.close();
  await writer.close();
});

Deno.test("pre-auth sockets closed for a bad first frame free their slot at once, even when the peer ignores the close", async () => {
  await using gw = await startTestGateway({ config: { gateway: { maxPreauthPerIp: 3 } } });
  const held: RawWs[] = [];
  try {
    // Three ways to be closed before auth: malformed JSON (1008), a first request that is not
    // connect (1008), a frame over the 64 KiB pre-auth cap (1009). None of these peers answers
    // the close frame or ends its TCP connection, so only the gateway can free their slots.
    const bad: [unknown, string][] = [
      ["{not json", "closed 1008"],
      [{ type: "req", id: "1", method: "health" }, "closed 1008"],
      ["x".repeat(70_000), "closed 1009"],
    ];
    for (const [frame, expected] of bad) {
      const w = await RawWs.open(gw.port);
      assert.equal(w.status, 101);
      held.push(w);
      assert.equal((await w.frame()).event, "connect.challenge");
      if (typeof frame === "string") await w.conn.write(wsFrame(frame));
      else await w.send(frame);
      const got = await w.frame().then(() => "frame", (e) => (e as Error).message);
      if (got === "frame") {
        // An error response comes before the close.
        assert.equal(await w.frame().then(() => "frame", (e) => (e as Error).message), expected);
      } else assert.equal(got, expected);
    }
    // All three slots of this address were used by closed sockets whose TCP is still open.
    // The next client from the same address is served at once.
    const t0 = performance.now();
    const legit = await connected(gw.url);
    assert.equal((await legit.request("health")).ok, true);
    assert.ok(performance.now() - t0 < 2000, "the legitimate connect took over 2 s");
    await legit.close();
  } finally {
    for (const w of held) w.close();
  }
});
