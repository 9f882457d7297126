/**
 * `gw cron` end to end: a real gateway and the CLI in a child process run
 * exactly as the binary runs it (`deno run -P=gw main.ts cron ...`, clean
 * environment, NO_COLOR=1, TZ=UTC unless a test says otherwise).
 */
import assert from "node:assert/strict";
import { type AnyFrame, connected, denoDir, gwRunArgs, ok, startTestGateway } from "./_helpers.ts";
import { json, okRun, type RunResult, show } from "./_cli.ts";

const ROOT = new URL("../", import.meta.url).pathname;

// ------------------------------------------------------------------ helpers

/** A gateway and a temp HOME for the children. */
async function setup() {
  const t = await startTestGateway();
  const home = await Deno.makeTempDir({ prefix: "gw-cli-cron-home-" });
  return {
    t,
    home,
    /** The connection flags for this gateway. */
    conn: ["--url", t.url, "--token", t.token],
    async [Symbol.asyncDispose]() {
      await t.stop();
      await Deno.remove(home, { recursive: true }).catch(() => {});
    },
  };
}

type Env = Awaited<ReturnType<typeof setup>>;

/** Run `gw cron <args>` against `env`'s gateway (or with `o.conn` instead), killed after 20 s. */
async function cron(
  env: Pick<Env, "home" | "conn">,
  args: string[],
  o: { tz?: string; conn?: string[] } = {},
): Promise<RunResult> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), 20_000);
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: gwRunArgs("cron", ...args, ...(o.conn ?? env.conn)),
      cwd: ROOT,
      env: {
        HOME: env.home,
        NO_COLOR: "1",
        TZ: o.tz ?? "UTC",
        PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
        DENO_DIR: await denoDir(),
      },
      clearEnv: true,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: ac.signal,
    }).output();
    const dec = new TextDecoder();
    return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
  } finally {
    clearTimeout(timer);
  }
}

/** The table row that starts with `id8`, or undefined. */
function row(table: string, id8: string): string | undefined {
  return table.split("\n").find((l) => l.startsWith(id8 + " "));
}

/** `Mon 23 Nov 08:00 Asia/Shanghai`, worked out here independently of lib/cli/cron.ts. */
function when(ms: number, tz: string): string {
  const parts = (t: number) =>
    Object.fromEntries(
      new Intl.DateTimeFormat("en-US", {
        timeZone: tz,
        weekday: "short",
        day: "numeric",
        month: "short",
        year: "numeric",
        hour: "2-digit",
        minute: "2-digit",
        hourCycle: "h23",
      }).formatToParts(t).map((p) => [p.type, p.value]),
    );
  const p = parts(ms);
  const year = p.year === parts(Date.now()).year ? "" : ` ${p.year}`;
  return `${p.weekday} ${p.day} ${p.month}${year} ${p.hour}:${p.minute} ${tz}`;
}

/** The hour and minute of `ms` in `tz`, `08:00`. */
function clock(ms: number, tz: string): string {
  return new Intl.DateTimeFormat("en-GB", {
    timeZone: tz,
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
  }).format(ms);
}

/** The gateway's jobs (disabled ones too), by id. */
async function jobs(env: Env): Promise<Map<string, AnyFrame>> {
  const r = okRun(await cron(env, ["list", "--all", "--json"]), "list --all --json");
  return new Map(json(r).jobs.map((j: AnyFrame) => [j.id, j]));
}

const SYSTEM = ["--system-event", "tick", "--wake", "next-heartbeat"];

// ------------------------------------------------------------------ add and list

Deno.test("cli cron add --every, --at and --cron --tz print the next run; list shows it in the job's zone", async () => {
  await using env = await setup();
  const [every, at, daily, anchored] = await Promise.all([
    cron(env, ["add", "hourly", "--every", "1h", ...SYSTEM]),
    cron(env, ["add", "soon", "--at", "20m", ...SYSTEM]),
    cron(env, [
      "add",
      "breakfast",
      "--cron",
      "0 8 * * *",
      "--tz",
      "Asia/Shanghai",
      "--message",
      "good morning",
      "--json",
    ]),
    cron(env, [
      "add",
      "anchored",
      "--every",
      "1h30m",
      "--anchor",
      "2026-01-01T00:15",
      ...SYSTEM,
      "--json",
    ]),
  ]);
  okRun(every, "add --every");
  assert.match(every.stdout, /added [0-9a-f]{8} hourly/, show(every));
  assert.match(every.stdout, /schedule:\s+every 1h\n/, show(every));
  assert.match(
    every.stdout,
    /next:\s+\w{3} \d{1,2} \w{3}( \d{4})? \d{2}:\d{2} UTC \(in (1h|59m)\)/,
  );
  assert.match(every.stdout, /session:\s+main, wake next-heartbeat/, show(every));

  okRun(at, "add --at");
  assert.match(at.stdout, /schedule:\s+at \d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC/, show(at));
  assert.match(at.stdout, /next:\s+.* UTC \(in (19|20)m\)/, show(at));

  okRun(daily, "add --cron --tz --json");
  const d = json(daily);
  assert.deepEqual(d.schedule, { kind: "cron", expr: "0 8 * * *", tz: "Asia/Shanghai" });
  assert.equal(d.payload.kind, "agentTurn");
  assert.equal(d.payload.message, "good morning");
  assert.equal(d.sessionTarget, "isolated", "an agent turn defaults to an isolated session");
  assert.equal(clock(d.nextRunAtMs, "Asia/Shanghai"), "08:00");
  assert.ok(d.nextRunAtMs > Date.now() && d.nextRunAtMs <= Date.now() + 86_400_000);

  okRun(anchored, "add --every --anchor --json");
  const a = json(anchored);
  assert.deepEqual(a.schedule, {
    kind: "every",
    everyMs: 5_400_000,
    anchorMs: Date.parse("2026-01-01T00:15:00Z"),
  });

  const all = await jobs(env);
  assert.equal(all.size, 4);
  const byName = new Map([...all.values()].map((j) => [j.name, j]));
  const hourly = byName.get("hourly")!;
  const soon = byName.get("soon")!;
  assert.ok(every.stdout.includes(hourly.id), "add prints the full id");

  // Local times in the child's zone; a cron job's in its own.
  const list = okRun(await cron(env, ["list"], { tz: "America/New_York" }), "list");
  const lines = list.stdout;
  assert.match(lines.split("\n")[0]!, /^ID\s+NAME\s+SCHEDULE\s+NEXT\s+LAST\s+ENABLED$/, show(list));
  const dRow = row(lines, d.id.slice(0, 8));
  assert.ok(dRow, `no row for ${d.id.slice(0, 8)}:\n${lines}`);
  assert.ok(dRow.includes("breakfast"), dRow);
  assert.ok(dRow.includes("cron 0 8 * * * (Asia/Shanghai)"), dRow);
  assert.ok(dRow.includes(`${when(d.nextRunAtMs, "Asia/Shanghai")} (in `), dRow);
  assert.match(dRow, /\s+yes$/, dRow);
  const hRow = row(lines, hourly.id.slice(0, 8))!;
  assert.ok(hRow.includes("every 1h "), hRow);
  assert.ok(hRow.includes(`${when(hourly.nextRunAtMs, "America/New_York")} (in `), hRow);
  const sRow = row(lines, soon.id.slice(0, 8))!;
  const at8 = new Date(soon.schedule.at).toISOString().slice(0, 16).replace("T", " ");
  assert.ok(sRow.includes(`at ${at8} UTC`), sRow);
  assert.ok(sRow.includes(`${when(soon.nextRunAtMs, "America/New_York")} (in `), sRow);
  assert.ok(row(lines, a.id.slice(0, 8))!.includes("every 1h30m from 2026-01-01 00:15 UTC"));
  // Soonest first, as cron.list sorts.
  assert.ok(lines.indexOf(sRow) < lines.indexOf(hRow) && lines.indexOf(hRow) < lines.indexOf(dRow));

  const asJson = json(okRun(await cron(env, ["list", "--json"]), "list --json"));
  assert.deepEqual(asJson.jobs.map((j: AnyFrame) => j.id).sort(), [...all.keys()].sort());
});

// ------------------------------------------------------------------ edit

Deno.test("cli cron edit changes only what it is given; --disable hides a job from list, --all shows it", async () => {
  await using env = await setup();
  const added = json(
    okRun(await cron(env, ["add", "edit me", "--every", "1h", ...SYSTEM, "--json"]), "add"),
  );
  const other = json(
    okRun(await cron(env, ["add", "other", "--every", "1h", ...SYSTEM, "--json"]), "add"),
  );
  const id8 = added.id.slice(0, 8);

  const every = okRun(await cron(env, ["edit", id8, "--every", "2h"]), "edit --every");
  assert.match(every.stdout, /updated [0-9a-f]{8} edit me/, show(every));
  assert.match(every.stdout, /schedule:\s+every 2h\n/, show(every));
  let j = (await jobs(env)).get(added.id);
  assert.equal(j.schedule.everyMs, 7_200_000);
  assert.ok(j.nextRunAtMs > Date.now() + 110 * 60_000, "the next run moves to 2h from now");
  assert.equal(j.wakeMode, "next-heartbeat", "fields not given stay as they were");
  assert.deepEqual(j.payload, { kind: "systemEvent", text: "tick" });
  assert.equal(j.name, "edit me");

  okRun(
    await cron(env, ["edit", id8, "--cron", "30 9 * * 1", "--tz", "Europe/Berlin"]),
    "edit --cron",
  );
  j = (await jobs(env)).get(added.id);
  assert.deepEqual(j.schedule, { kind: "cron", expr: "30 9 * * 1", tz: "Europe/Berlin" });
  const list = okRun(await cron(env, ["list"]), "list").stdout;
  assert.ok(row(list, id8)?.includes("cron 30 9 * * 1 (Europe/Berlin)"), list);
  assert.ok(row(list, id8)?.includes(`${when(j.nextRunAtMs, "Europe/Berlin")} (in `), list);
  assert.ok(when(j.nextRunAtMs, "Europe/Berlin").startsWith("Mon "));

  // --tz alone keeps the expression; on a job that is not a cron expression it is a usage error.
  okRun(await cron(env, ["edit", id8, "--tz", "Asia/Tokyo"]), "edit --tz");
  j = (await jobs(env)).get(added.id);
  assert.deepEqual(j.schedule, { kind: "cron", expr: "30 9 * * 1", tz: "Asia/Tokyo" });
  const wrongKind = await cron(env, ["edit", other.id.slice(0, 8), "--tz", "UTC"]);
  assert.equal(wrongKind.code, 2, show(wrongKind));
  assert.match(wrongKind.stderr, /--tz goes with --cron/, show(wrongKind));
  assert.deepEqual((await jobs(env)).get(other.id).schedule, other.schedule);

  okRun(
    await cron(env, ["edit", id8, "--name", "renamed", "--message", "do it", "--model", "a/b"]),
    "edit --name --message",
  );
  j = (await jobs(env)).get(added.id);
  assert.equal(j.name, "renamed");
  assert.deepEqual(j.payload, { kind: "agentTurn", message: "do it", model: "a/b" });
  assert.equal(j.sessionTarget, "isolated", "an agent turn leaves the main session");
  assert.equal(j.schedule.tz, "Asia/Tokyo");

  const off = okRun(await cron(env, ["edit", id8, "--disable"]), "edit --disable");
  assert.match(off.stdout, /enabled:\s+no/, show(off));
  const [plain, all, plainJson] = await Promise.all([
    cron(env, ["list"]),
    cron(env, ["list", "--all"]),
    cron(env, ["list", "--json"]),
  ]);
  assert.equal(row(okRun(plain, "list").stdout, id8), undefined, `still listed:\n${plain.stdout}`);
  assert.ok(row(plain.stdout, other.id.slice(0, 8)), plain.stdout);
  const offRow = row(okRun(all, "list --all").stdout, id8);
  assert.ok(offRow, `--all should list it:\n${all.stdout}`);
  assert.match(offRow, /renamed\s.*\s-\s+-\s+no$/, offRow);
  assert.deepEqual(json(plainJson).jobs.map((x: AnyFrame) => x.id), [other.id]);

  okRun(await cron(env, ["edit", id8, "--enable"]), "edit --enable");
  assert.ok(row(okRun(await cron(env, ["list"]), "list").stdout, id8), "enabled again");
});

// ------------------------------------------------------------------ run, runs, status

Deno.test("cli cron run starts a job, runs shows it, --due says why not, status counts", async () => {
  await using env = await setup();
  const job = json(
    okRun(await cron(env, ["add", "pinger", "--every", "1h", ...SYSTEM, "--json"]), "add"),
  );
  const id8 = job.id.slice(0, 8);
  const before = json(okRun(await cron(env, ["runs", id8, "--json"]), "runs --json"));
  assert.equal(before.entries.length, 0);

  const run = okRun(await cron(env, ["run", id8]), "run");
  assert.match(run.stdout, /started [0-9a-f]{8} pinger \(run [0-9a-f]{8}\)/, show(run));

  const c = await connected(env.t.url);
  try {
    const deadline = Date.now() + 5000;
    let entries: AnyFrame[] = [];
    while (Date.now() < deadline) {
      entries = (await ok(c, "cron.runs", { id: job.id })).entries;
      if (entries[0]?.status === "ok") break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(entries.length, 1, JSON.stringify(entries));
    assert.equal(entries[0].status, "ok", JSON.stringify(entries));
  } finally {
    await c.close();
  }

  const [table, byId, errorsOnly, due, status] = await Promise.all([
    cron(env, ["runs"]),
    cron(env, ["runs", id8, "--json"]),
    cron(env, ["runs", "--status", "error"]),
    cron(env, ["run", id8, "--due"]),
    cron(env, ["status"]),
  ]);
  const lines = okRun(table, "runs").stdout.split("\n");
  assert.match(lines[0]!, /^STARTED\s+JOB\s+STATUS\s+DURATION\s+SUMMARY$/, show(table));
  assert.equal(lines.filter(Boolean).length, 2, show(table));
  assert.match(lines[1]!, /pinger\s+ok \(manual\)\s+\d+(ms|\.\ds)\s+queued for the next turn/);
  const r = json(okRun(byId, "runs ID --json"));
  assert.equal(r.total, 1);
  assert.equal(r.entries[0].jobId, job.id);
  assert.match(okRun(errorsOnly, "runs --status error").stdout, /no runs/);
  assert.match(
    okRun(due, "run --due").stdout,
    /not started: [0-9a-f]{8} pinger: it is not due yet/,
  );
  assert.match(okRun(status, "status").stdout, /1 job\(s\), 1 enabled, 0 running/, show(status));
  assert.match(status.stdout, /next wake\s+\w{3} .* UTC \(in (59m|1h)\)/, show(status));
});

// ------------------------------------------------------------------ rm and prefixes

Deno.test("cli cron rm takes any unique id prefix; an ambiguous or unknown one exits 1", async () => {
  await using env = await setup();
  const c = await connected(env.t.url);
  const ids: string[] = [];
  try {
    // Add jobs until two ids share a first character (17 at most).
    while (new Set(ids.map((id) => id[0])).size === ids.length) {
      const j = await ok(c, "cron.add", {
        name: `job ${ids.length}`,
        schedule: { kind: "every", everyMs: 3_600_000 },
        payload: { kind: "systemEvent", text: "x" },
      });
      ids.push(j.id);
    }
  } finally {
    await c.close();
  }
  const shared = ids.at(-1)![0]!;
  const twins = ids.filter((id) => id[0] === shared);
  assert.equal(twins.length, 2);

  const [ambiguous, unknown, ambiguousRun] = await Promise.all([
    cron(env, ["rm", shared]),
    cron(env, ["rm", "zz"]),
    cron(env, ["run", shared]),
  ]);
  assert.equal(ambiguous.code, 1, show(ambiguous));
  assert.match(ambiguous.stderr, /ambiguous: 2 job ids start with it/, show(ambiguous));
  for (const id of twins) assert.ok(ambiguous.stderr.includes(id.slice(0, 8)), show(ambiguous));
  assert.equal(unknown.code, 1, show(unknown));
  assert.match(unknown.stderr, /no cron job has an id starting with 'zz'/, show(unknown));
  assert.equal(ambiguousRun.code, 1, show(ambiguousRun));
  assert.equal((await jobs(env)).size, ids.length, "nothing was removed");

  // The shortest prefix that tells the first twin apart.
  const [a, b] = twins as [string, string];
  let n = 1;
  while (b.startsWith(a.slice(0, n))) n++;
  const rm = okRun(await cron(env, ["rm", a.slice(0, n)]), `rm ${a.slice(0, n)}`);
  assert.match(rm.stdout, new RegExp(`removed ${a.slice(0, 8)} job \\d+`), show(rm));
  const left = await jobs(env);
  assert.equal(left.has(a), false, "removed");
  assert.equal(left.size, ids.length - 1);

  // Now the shared character names one job; the full id of the removed one names none.
  const rmRest = okRun(await cron(env, ["rm", shared, "--json"]), "rm by the shared character");
  assert.deepEqual(json(rmRest), { ok: true, removed: true, id: b });
  const again = await cron(env, ["rm", a]);
  assert.equal(again.code, 1, show(again));
  assert.match(again.stderr, /no cron job/, show(again));
});

// ------------------------------------------------------------------ errors

Deno.test("cli cron usage errors exit 2 before contacting a gateway", async () => {
  const home = await Deno.makeTempDir({ prefix: "gw-cli-cron-home-" });
  try {
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = l.addr.port;
    l.close();
    // Nothing listens there: a check made after connecting would exit 3.
    const env = { home, conn: ["--url", `ws://127.0.0.1:${port}`, "--token", "x".repeat(24)] };
    const add = (...rest: string[]) => ["add", "x", ...rest];
    const cases: [string, string[], RegExp][] = [
      [
        "two schedules",
        add("--every", "1h", "--at", "20m", ...SYSTEM),
        /one schedule, got --every and --at/,
      ],
      ["no schedule", add(...SYSTEM), /needs a schedule/],
      ["no payload", add("--every", "1h"), /needs something to do: --message/],
      ["two payloads", add("--every", "1h", "--message", "m", "--system-event", "s"), /not both/],
      ["bad duration", add("--every", "5x", ...SYSTEM), /--every: expected a duration such as 30s/],
      ["a bare number", add("--every", "90", ...SYSTEM), /--every: expected a duration/],
      ["too short", add("--every", "500ms", ...SYSTEM), /--every: must be at least 1s/],
      ["bad --at", add("--at", "tomorrow", ...SYSTEM), /--at: expected a delay/],
      [
        "bad --anchor",
        add("--every", "1h", "--anchor", "noon", ...SYSTEM),
        /--anchor: expected an ISO/,
      ],
      [
        "--tz without --cron",
        add("--every", "1h", "--tz", "UTC", ...SYSTEM),
        /--tz goes with --cron/,
      ],
      [
        "--model on an event",
        add("--every", "1h", ...SYSTEM, "--model", "m"),
        /--model goes with --message/,
      ],
      [
        "bad --timeout",
        add("--every", "1h", "--message", "m", "--timeout", "1.5"),
        /--timeout: expected whole seconds/,
      ],
      [
        "bad --session",
        add("--every", "1h", ...SYSTEM, "--session", "mine"),
        /--session: expected main, isolated/,
      ],
      [
        "bad --wake",
        add("--cron", "* * * * *", "--system-event", "s", "--wake", "later"),
        /--wake: expected now/,
      ],
      ["no name", ["add", "--every", "1h", ...SYSTEM], /usage: gw cron add/],
      [
        "a flag of another subcommand",
        add("--every", "1h", ...SYSTEM, "--all"),
        /cron add does not take --all/,
      ],
      ["list with a schedule flag", ["list", "--every", "1h"], /cron list does not take --every/],
      ["edit with nothing", ["edit", "abc"], /nothing to change/],
      ["edit --enable --disable", ["edit", "abc", "--enable", "--disable"], /not both/],
      ["edit --disabled", ["edit", "abc", "--disabled"], /use --disable/],
      [
        "edit with a bad duration",
        ["edit", "abc", "--every", "soon"],
        /--every: expected a duration/,
      ],
      ["rm without an id", ["rm"], /usage: gw cron rm ID/],
      ["rm with two", ["rm", "a", "b"], /unexpected argument 'b'/],
      ["runs --status", ["runs", "--status", "weird"], /--status: expected ok, error, skipped/],
      ["runs --limit", ["runs", "--limit", "0"], /--limit: expected a whole number/],
      ["unknown subcommand", ["frob"], /unknown cron command 'frob'/],
    ];
    const results = await Promise.all(cases.map(([, args]) => cron(env, args)));
    cases.forEach(([name, , re], i) => {
      const r = results[i]!;
      assert.equal(r.code, 2, `${name}: ${show(r)}`);
      assert.match(r.stderr, re, `${name}: ${show(r)}`);
      assert.match(r.stderr, /gw help/, `${name}: should point at 'gw help'`);
      assert.equal(r.stdout, "", `${name}: ${show(r)}`);
    });
  } finally {
    await Deno.remove(home, { recursive: true }).catch(() => {});
  }
});

Deno.test("cli cron: the gateway's validation errors exit 1 with its message", async () => {
  await using env = await setup();
  const [tz, tzJson, expr, past, target] = await Promise.all([
    cron(env, ["add", "x", "--cron", "0 8 * * *", "--tz", "Mars/Olympus", ...SYSTEM]),
    cron(env, ["add", "x", "--cron", "0 8 * * *", "--tz", "Mars/Olympus", ...SYSTEM, "--json"]),
    cron(env, ["add", "x", "--cron", "61 * * * *", ...SYSTEM]),
    cron(env, ["add", "x", "--at", "2020-01-01T00:00:00Z", ...SYSTEM]),
    cron(env, ["add", "x", "--every", "1h", "--message", "m", "--session", "main"]),
  ]);
  assert.equal(tz.code, 1, show(tz));
  assert.match(
    tz.stderr,
    /INVALID_REQUEST.*schedule\.tz: unknown time zone 'Mars\/Olympus'/,
    show(tz),
  );
  assert.equal(tzJson.code, 1, show(tzJson));
  assert.equal(json(tzJson).error.code, "INVALID_REQUEST");
  assert.match(json(tzJson).error.message, /unknown time zone/);
  assert.equal(expr.code, 1, show(expr));
  assert.match(expr.stderr, /invalid cron expression '61 \* \* \* \*'/, show(expr));
  assert.equal(past.code, 1, show(past));
  assert.match(past.stderr, /is in the past/, show(past));
  assert.equal(target.code, 1, show(target));
  assert.match(target.stderr, /main jobs carry a systemEvent payload/, show(target));
  assert.equal((await jobs(env)).size, 0, "nothing was added");
});
