/** The store's own guarantees, below the methods that use it. */
import assert from "node:assert/strict";
import { sortableId, Store } from "../lib/store/mod.ts";

Deno.test("sortableId is strictly increasing, within a millisecond and when the clock steps back", () => {
  let prev = "";
  for (let i = 0; i < 10_000; i++) {
    const id = sortableId(i < 5_000 ? 1_800_000_000_000 : 1_799_999_999_000);
    assert.ok(id > prev, `${id} <= ${prev}`);
    prev = id;
  }
});

Deno.test("system events come back in the order they were queued, capped at 20", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gw-store-" });
  const store = await Store.open(`${dir}/gw.kv`);
  try {
    const texts = Array.from({ length: 25 }, (_, i) => `event ${i}`);
    for (const t of texts) await store.enqueueSystemEvent("agent:main:main", t);
    const got = (await store.systemEvents("agent:main:main")).map((e) => e.text);
    assert.deepEqual(got, texts.slice(5));
  } finally {
    store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("transcripts: a message over the KV value limit is split and comes back whole; seqs stay in order", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gw-store-" });
  const store = await Store.open(`${dir}/gw.kv`);
  try {
    const key = "agent:main:big";
    const entry = await store.sessions.ensure(key, "main");
    // Two-byte characters: 150,000 of them is 300 KB, far over the 64 KiB value limit.
    const big = "日本語のテキスト".repeat(18_750);
    const { seqs } = await store.sessions.append(key, [
      { role: "user", content: "before", timestamp: 1 },
      { role: "user", content: big, timestamp: 2 },
      { role: "user", content: "after", timestamp: 3 },
    ]);
    assert.deepEqual(seqs, [0, 1, 2]);
    const got = await store.sessions.messages(entry.sessionId, { limit: 10 });
    assert.deepEqual(got.map((m) => m.seq), [0, 1, 2]);
    assert.equal(got[1]!.message.role === "user" && got[1]!.message.content, big);
    // Paging: before/from select by seq.
    const page = await store.sessions.messages(entry.sessionId, { limit: 10, before: 2 });
    assert.deepEqual(page.map((m) => m.seq), [0, 1]);
    // Over the per-message cap: refused, nothing written, the session unchanged.
    await assert.rejects(
      store.sessions.append(key, [{ role: "user", content: "x".repeat(300_000), timestamp: 4 }]),
      /message too large/,
    );
    assert.equal((await store.sessions.get(key))!.nextSeq, 3);
    // Deleting the transcript removes the parts too.
    assert.equal(await store.sessions.deleteTranscript(entry.sessionId), 3);
    assert.deepEqual(await store.sessions.messages(entry.sessionId, { limit: 10 }), []);
  } finally {
    store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("two stores on one KV file never give two messages the same seq", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gw-store-" });
  const a = await Store.open(`${dir}/gw.kv`);
  const b = await Store.open(`${dir}/gw.kv`);
  try {
    const key = "agent:main:shared";
    const entry = await a.sessions.ensure(key, "main");
    await Promise.all(
      Array.from(
        { length: 40 },
        (_, i) =>
          (i % 2 ? a : b).sessions.append(key, [{ role: "user", content: `m${i}`, timestamp: i }]),
      ),
    );
    const all = await a.sessions.messages(entry.sessionId, { limit: 100 });
    assert.equal(all.length, 40);
    assert.deepEqual(all.map((m) => m.seq), Array.from({ length: 40 }, (_, i) => i));
    assert.equal(new Set(all.map((m) => m.message.role === "user" && m.message.content)).size, 40);
  } finally {
    a.close();
    b.close();
    await Deno.remove(dir, { recursive: true });
  }
});
