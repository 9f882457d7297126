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
