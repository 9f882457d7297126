/**
 * A KV Connect server on a real socket: what `denokv serve` (or Deno Deploy)
 * is to `Deno.openKv("https://…")`, for tests of `gw start --kv-url`.
 *
 * It speaks protocol version 3 of the KV Connect spec (denoland/denokv,
 * proto/kv-connect.md): the JSON metadata exchange (`POST <url>`, `Bearer
 * <access token>`, answering `{version, databaseId, endpoints, token, expiresAt}`),
 * then protobuf over HTTP on the data path (`datapath.proto`):
 * `snapshot_read`, `atomic_write` (checks on versionstamps, set, delete,
 * sum/min/max of LE64 values, `expire_at_ms`) and `watch` (a stream of
 * length-prefixed `WatchOutput` messages, the first at once, then one per
 * change of a watched key). Keys and values are kept as the client encodes
 * them (opaque bytes, ordered bytewise), as the real server keeps them.
 * Queues (`enqueues`) are refused: gw does not use them.
 *
 * ```ts
 * const kv = await startFakeDenoKv({ accessToken: "t" });
 * // DENO_KV_ACCESS_TOKEN=t  Deno.openKv(kv.url)
 * await kv.close();
 * ```
 *
 * @module
 */

/** A running fake KV Connect server. */
export interface FakeDenoKv {
  /** The URL to give `Deno.openKv` (or `gw start --kv-url`). */
  url: string;
  /** Requests served, by path (`metadata`, `snapshot_read`, `atomic_write`, `watch`). */
  counts: Record<string, number>;
  close(): Promise<void>;
}

interface Entry {
  key: Uint8Array;
  value: Uint8Array;
  encoding: number;
  versionstamp: Uint8Array;
  expireAt: number;
}

// ------------------------------------------------------------- protobuf

type Fields = Map<number, (number | Uint8Array)[]>;

/** Decode one message into its fields (varints as numbers, length-delimited as bytes). */
function decode(buf: Uint8Array): Fields {
  const out: Fields = new Map();
  let i = 0;
  const varint = (): number => {
    let n = 0;
    let mul = 1;
    for (;;) {
      const b = buf[i++];
      if (b === undefined) throw new Error("truncated varint");
      n += (b & 0x7f) * mul;
      if (b < 0x80) return n;
      mul *= 128;
    }
  };
  while (i < buf.length) {
    const tag = varint();
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    let v: number | Uint8Array;
    if (wire === 0) v = varint();
    else if (wire === 2) {
      const len = varint();
      v = buf.subarray(i, i + len);
      i += len;
    } else if (wire === 1) {
      v = buf.subarray(i, i + 8);
      i += 8;
    } else if (wire === 5) {
      v = buf.subarray(i, i + 4);
      i += 4;
    } else throw new Error(`unsupported wire type ${wire}`);
    const list = out.get(field) ?? [];
    list.push(v);
    out.set(field, list);
  }
  return out;
}

const bytesOf = (f: Fields, n: number): Uint8Array[] => (f.get(n) ?? []) as Uint8Array[];
const numOf = (f: Fields, n: number): number => ((f.get(n) ?? [0])[0] as number);
const oneBytes = (f: Fields, n: number): Uint8Array => bytesOf(f, n)[0] ?? new Uint8Array();

/** A protobuf writer. */
class Writer {
  #parts: number[] = [];
  #varint(n: number): void {
    while (n >= 0x80) {
      this.#parts.push((n % 128) | 0x80);
      n = Math.floor(n / 128);
    }
    this.#parts.push(n);
  }
  uint(field: number, n: number): this {
    if (n) {
      this.#varint(field * 8);
      this.#varint(n);
    }
    return this;
  }
  bytes(field: number, b: Uint8Array): this {
    this.#varint(field * 8 + 2);
    this.#varint(b.length);
    for (const x of b) this.#parts.push(x);
    return this;
  }
  done(): Uint8Array {
    return new Uint8Array(this.#parts);
  }
}

function entryMsg(e: Entry): Uint8Array {
  return new Writer().bytes(1, e.key).bytes(2, e.value).uint(3, e.encoding)
    .bytes(4, e.versionstamp).done();
}

// ------------------------------------------------------------- store

function compare(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

const hex = (b: Uint8Array): string =>
  Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

function le64(b: Uint8Array): bigint {
  return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
}

function toLe64(n: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, n), true);
  return b;
}

/** Start a fake KV Connect server on 127.0.0.1 (a free port). */
export function startFakeDenoKv(opts: { accessToken: string }): Promise<FakeDenoKv> {
  const dataToken = crypto.randomUUID();
  const uuid = crypto.randomUUID();
  const data = new Map<string, Entry>();
  let version = 0;
  const watchers = new Set<(changed: Set<string>) => void>();
  const counts: Record<string, number> = {};

  const live = (e: Entry | undefined, now: number): Entry | undefined =>
    e && (e.expireAt === 0 || e.expireAt > now) ? e : undefined;

  const snapshotRead = (body: Uint8Array): Uint8Array => {
    const now = Date.now();
    const sorted = [...data.values()].filter((e) => live(e, now)).sort((a, b) =>
      compare(a.key, b.key)
    );
    const out = new Writer();
    for (const r of bytesOf(decode(body), 1)) {
      const rf = decode(r);
      const start = oneBytes(rf, 1);
      const end = oneBytes(rf, 2);
      const limit = numOf(rf, 3);
      const reverse = numOf(rf, 4) === 1;
      let hits = sorted.filter((e) => compare(e.key, start) >= 0 && compare(e.key, end) < 0);
      if (reverse) hits = hits.reverse();
      if (limit > 0) hits = hits.slice(0, limit);
      const range = new Writer();
      for (const e of hits) range.bytes(1, entryMsg(e));
      out.bytes(1, range.done());
    }
    return out.uint(4, 1).uint(8, 1).done();
  };

  const atomicWrite = (body: Uint8Array): Uint8Array | Response => {
    const f = decode(body);
    if (bytesOf(f, 3).length) return new Response("queues are not supported", { status: 400 });
    const now = Date.now();
    const failed: number[] = [];
    bytesOf(f, 1).forEach((c, i) => {
      const cf = decode(c);
      const cur = live(data.get(hex(oneBytes(cf, 1))), now);
      const want = oneBytes(cf, 2);
      const ok = want.length === 0 ? !cur : !!cur && compare(cur.versionstamp, want) === 0;
      if (!ok) failed.push(i);
    });
    if (failed.length) {
      // failed_checks is a packed repeated uint32 in proto3: send it packed.
      const list: number[] = [];
      for (const i of failed) {
        let n = i;
        while (n >= 0x80) {
          list.push((n % 128) | 0x80);
          n = Math.floor(n / 128);
        }
        list.push(n);
      }
      return new Writer().uint(1, 2).bytes(4, new Uint8Array(list)).done();
    }
    version++;
    const vs = new Uint8Array(10);
    new DataView(vs.buffer).setBigUint64(0, BigInt(version));
    const changed = new Set<string>();
    for (const m of bytesOf(f, 2)) {
      const mf = decode(m);
      const key = oneBytes(mf, 1);
      const id = hex(key);
      const type = numOf(mf, 3);
      const vf = decode(oneBytes(mf, 2));
      const value = oneBytes(vf, 1);
      const encoding = numOf(vf, 2);
      const expireAt = numOf(mf, 4);
      changed.add(id);
      if (type === 2) {
        data.delete(id);
        continue;
      }
      if (type === 1) {
        data.set(id, {
          key: key.slice(),
          value: value.slice(),
          encoding,
          versionstamp: vs,
          expireAt,
        });
        continue;
      }
      if (type >= 3 && type <= 5) {
        const cur = live(data.get(id), now);
        const a = cur && cur.encoding === 2 ? le64(cur.value) : undefined;
        const b = le64(value);
        const next = a === undefined
          ? b
          : type === 3
          ? a + b
          : type === 4
          ? (a > b ? a : b)
          : (a < b ? a : b);
        data.set(id, {
          key: key.slice(),
          value: toLe64(next),
          encoding: 2,
          versionstamp: vs,
          expireAt,
        });
        continue;
      }
      return new Response(`unsupported mutation type ${type}`, { status: 400 });
    }
    for (const w of watchers) w(changed);
    return new Writer().uint(1, 1).bytes(2, vs).done();
  };

  const watch = (body: Uint8Array, signal: AbortSignal): Response => {
    const keys = bytesOf(decode(body), 1).map((k) => oneBytes(decode(k), 1).slice());
    const sent = new Map<string, string>();
    const frame = (all: boolean): Uint8Array | null => {
      const now = Date.now();
      const out = new Writer().uint(1, 1);
      let any = false;
      for (const k of keys) {
        const id = hex(k);
        const e = live(data.get(id), now);
        const stamp = e ? hex(e.versionstamp) : "";
        const changed = all || sent.get(id) !== stamp;
        sent.set(id, stamp);
        const ko = new Writer().uint(1, changed ? 1 : 0);
        if (changed && e) ko.bytes(2, entryMsg(e));
        any ||= changed;
        out.bytes(2, ko.done());
      }
      if (!any) return null;
      const msg = out.done();
      const framed = new Uint8Array(4 + msg.length);
      new DataView(framed.buffer).setUint32(0, msg.length, true);
      framed.set(msg, 4);
      return framed;
    };
    let listener: ((changed: Set<string>) => void) | undefined;
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(frame(true)!);
        listener = (changed) => {
          if (!keys.some((k) => changed.has(hex(k)))) return;
          const f = frame(false);
          if (f) {
            try {
              controller.enqueue(f);
            } catch { /* closed */ }
          }
        };
        watchers.add(listener);
        signal.addEventListener("abort", () => {
          watchers.delete(listener!);
          try {
            controller.close();
          } catch { /* closed */ }
        });
      },
      cancel() {
        if (listener) watchers.delete(listener);
      },
    });
    return new Response(stream, { headers: { "content-type": "application/octet-stream" } });
  };

  const ac = new AbortController();
  const { promise, resolve } = Promise.withResolvers<string>();
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    signal: ac.signal,
    onListen: (a) => resolve(`http://127.0.0.1:${a.port}/kv`),
  }, async (req) => {
    const path = new URL(req.url).pathname;
    const auth = req.headers.get("authorization") ?? "";
    if (req.method !== "POST") return new Response("method not allowed", { status: 405 });
    if (path === "/kv") {
      counts.metadata = (counts.metadata ?? 0) + 1;
      if (auth !== `Bearer ${opts.accessToken}`) {
        return new Response("invalid access token", { status: 401 });
      }
      const body = await req.json().catch(() => ({})) as { supportedVersions?: number[] };
      if (!body.supportedVersions?.includes(3)) {
        return new Response("this server speaks protocol version 3 only", { status: 400 });
      }
      return Response.json({
        version: 3,
        databaseId: uuid,
        endpoints: [{ url: "/kv/v3", consistency: "strong" }],
        token: dataToken,
        expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
      });
    }
    const op = path.startsWith("/kv/v3/") ? path.slice("/kv/v3/".length) : "";
    counts[op || path] = (counts[op || path] ?? 0) + 1;
    if (auth !== `Bearer ${dataToken}`) return new Response("invalid token", { status: 401 });
    if (req.headers.get("x-denokv-database-id") !== uuid) {
      return new Response("unknown database", { status: 400 });
    }
    const body = new Uint8Array(await req.arrayBuffer());
    const proto = (b: Uint8Array | Response) =>
      b instanceof Response ? b : new Response(b as Uint8Array<ArrayBuffer>, {
        headers: { "content-type": "application/x-protobuf" },
      });
    try {
      if (op === "snapshot_read") return proto(snapshotRead(body));
      if (op === "atomic_write") return proto(atomicWrite(body));
      if (op === "watch") return watch(body, ac.signal);
    } catch (e) {
      return new Response(`bad request: ${(e as Error).message}`, { status: 400 });
    }
    return new Response("not found", { status: 404 });
  });
  return promise.then((url) => ({
    url,
    counts,
    async close() {
      ac.abort();
      await server.finished;
    },
  }));
}
