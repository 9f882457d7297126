/**
 * The scheduler through a real gateway: jobs, runs, events, restarts.
 */
import assert from "node:assert/strict";
import { connected, err, ok, startTestGateway } from "./_helpers.ts";

Deno.test("a 1-second every job fires on schedule and its cron events arrive", async () => {
  await using t = await startTestGateway();
  const c = await connected(t.url);
  try {
    const job = await ok(c, "cron.add", {
      name: "tick",
      schedule: { kind: "every", everyMs: 1000 },
      payload: { kind: "systemEvent", text: "tick" },
      wakeMode: "next-heartbeat",
    });
    assert.equal(typeof job.id, "string");
    assert.equal(job.sessionTarget, "main");
    const firstAt = job.state.nextRunAtMs;
    const started = await c.next((f) => f.event === "cron" && f.payload.action === "started", 3000);
    const startedAt = Date.now();
    assert.ok(startedAt - firstAt < 200, `started ${startedAt - firstAt} ms after its time`);
    const finished = await c.next(
      (f) =>
        f.event === "cron" && f.payload.action === "finished" &&
        f.payload.runId === started.payload.runId,
      3000,
    );
    assert.equal(finished.payload.status, "ok");
    await c.next(
      (f) =>
        f.event === "cron" && f.payload.action === "finished" &&
        f.payload.runId !== started.payload.runId,
      3000,
    );
    const runs = await ok(c, "cron.runs", { id: job.id });
    assert.ok(runs.entries.length >= 2);
    assert.equal(runs.entries[0].status, "ok");
    const status = await ok(c, "cron.status");
    assert.equal(status.jobs, 1);
    const e = await err(c, "cron.remove", { id: "nope" });
    assert.equal(e.details.code, "CRON_JOB_NOT_FOUND");
    assert.deepEqual(await ok(c, "cron.remove", { id: job.id }), { ok: true, removed: true });
  } finally {
    await c.close();
  }
});
