/**
 * Crash chaos: `gw start` in a child process takes a write-heavy workload of
 * every kind of acknowledged write (chat.send turns against the fake Anthropic
 * API, sessions.patch labels, cron.add jobs, config.patch values, device
 * pairing records, Telegram sender approvals: a new sender writes to the bot
 * through tests/_telegram_api.ts, and telegram.pairing.approve approves a
 * waiting request) and is killed with SIGKILL at a random moment. While it is
 * down the KV file is checked for consistency (the cron due index matches the
 * jobs, no pending input without its session); after each restart on the same
 * state dir every write that was acknowledged before the kill must be there.
 *
 * The documented run (docs/reliability.md, "Chaos"):
 *
 * ```sh
 * deno task chaos --cycles 50
 * ```
 *
 * tests/chaos_test.ts runs the same code with 10 cycles in the normal suite.
 *
 * @module
 */
import { type AnyFrame, connectParams, mulberry32, RawClient } from "./_helpers.ts";
import { type FakeAnthropic, startFakeAnthropic } from "./_fake_anthropic.ts";
import { GwChild } from "./_gw_child.ts";
import { keys } from "../lib/store/keys.ts";
import { DeviceIdentity } from "../lib/client/identity.ts";
import { TelegramApi } from "./_telegram_api.ts";

/** The bot token the chaos gateway polls tests/_telegram_api.ts with. */
const TG_TOKEN = "424242:chaos-bot-token";

/** Options of {@link runChaos}. */
export interface ChaosOptions {
  /** Kill/restart cycles. */
  cycles: number;
  /** Concurrent writer connections (default 4). */
  writers?: number;
  /** The kill comes this long (uniformly random, ms) after the workload starts. Default [150, 1200]. */
  killAfterMs?: [number, number];
  /** Progress lines (default: none). */
  log?: (line: string) => void;
  /** Seed of the random kill points and write mix (default: Date.now()). */
  seed?: number;
}

/** Acknowledged writes, by kind. */
export interface Acked {
  /** sessionKey → user messages whose chat.send was acknowledged. */
  chat: Map<string, string[]>;
  /** sessionKey → label acknowledged by sessions.patch. */
  labels: Map<string, string>;
  /** cron job ids from cron.add answers. */
  cron: Set<string>;
  /** skills.entries names added by acknowledged config.patch calls. */
  config: Set<string>;
  /** deviceIds paired by an acknowledged (hello-ok) signed connect. */
  devices: Set<string>;
  /** Telegram sender ids approved by an acknowledged telegram.pairing.approve. */
  telegram: Set<string>;
}

/** What one run found. */
export interface ChaosResult {
  cycles: number;
  /** Cycles after which every acknowledged write was found and KV was consistent. */
  passed: number;
  /** Acknowledged writes checked in the end, by kind. */
  acked: Record<keyof Acked, number>;
  /** Every problem found (empty when all cycles passed). */
  problems: string[];
  seed: number;
}

/** A request answered, or null when the socket closed first (the gateway died). */
async function call(c: RawClient, method: string, params: unknown): Promise<AnyFrame | null> {
  if (c.isClosed) return null;
  const res = c.request(method, params);
  res.catch(() => {});
  const r = await Promise.race([res, c.closed.then(() => null)]).catch(() => null);
  return r;
}

/** A connected admin client, or null when the gateway is gone. */
async function open(url: string): Promise<RawClient | null> {
  const c = new RawClient(url);
  try {
    const res = await Promise.race([c.connect(connectParams()), c.closed.then(() => null)]);
    if (res?.ok) return c;
  } catch { /* the gateway died */ }
  await c.close();
  return null;
}

/** Signed connect of a new device; its id once hello-ok arrived (the pairing record is acked). */
async function pairDevice(url: string): Promise<string | null> {
  const id = await DeviceIdentity.generate();
  const c = new RawClient(url);
  try {
    const ch = await Promise.race([c.challenge(), c.closed.then(() => null)]);
    if (!ch) return null;
    const params = connectParams({ scopes: ["operator.read"] }) as AnyFrame;
    params.device = await id.sign({
      challenge: ch.payload,
      clientId: params.client.id,
      clientMode: params.client.mode,
      role: "operator",
      scopes: params.scopes,
      token: params.auth.token,
      platform: params.client.platform,
    });
    const res = await call(c, "connect", params).catch(() => null);
    return res?.ok ? id.deviceId : null;
  } catch {
    return null;
  } finally {
    await c.close();
  }
}

function emptyAcked(): Acked {
  return {
    chat: new Map(),
    labels: new Map(),
    cron: new Set(),
    config: new Set(),
    devices: new Set(),
    telegram: new Set(),
  };
}

/** One writer: a loop of mixed writes until the gateway dies; acked ones go to `acked`. */
async function writer(
  url: string,
  cycle: number,
  w: number,
  rand: () => number,
  acked: Acked,
  tg: TelegramApi,
): Promise<void> {
  const c = await open(url);
  if (!c) return;
  try {
    for (let n = 0;; n++) {
      const tag = `c${cycle}-w${w}-${n}`;
      const kind = Math.floor(rand() * 6);
      if (kind === 0) {
        const sessionKey = `chaos-c${cycle}-w${w}`;
        const message = `msg ${tag}`;
        const r = await call(c, "chat.send", { sessionKey, message, idempotencyKey: tag });
        if (!r) return;
        if (!r.ok) throw new Error(`chat.send ${tag}: ${JSON.stringify(r.error)}`);
        const list = acked.chat.get(sessionKey) ?? [];
        list.push(message);
        acked.chat.set(sessionKey, list);
      } else if (kind === 1) {
        const key = `chaos-label-${tag}`;
        const label = `L ${tag}`;
        const r = await call(c, "sessions.patch", { key, label });
        if (!r) return;
        if (!r.ok) throw new Error(`sessions.patch ${tag}: ${JSON.stringify(r.error)}`);
        acked.labels.set(key, label);
      } else if (kind === 2) {
        const r = await call(c, "cron.add", {
          name: `job ${tag}`,
          schedule: { kind: "every", everyMs: 3_600_000 },
          payload: { kind: "systemEvent", text: tag },
          wakeMode: "next-heartbeat",
        });
        if (!r) return;
        if (!r.ok) throw new Error(`cron.add ${tag}: ${JSON.stringify(r.error)}`);
        acked.cron.add(r.payload.id);
      } else if (kind === 3) {
        const name = `chaos-${tag}`;
        // Compare-and-set on the hash config.get gave; another writer may win in between.
        let r: AnyFrame | null = null;
        for (let attempt = 0; attempt < 20; attempt++) {
          const base = await call(c, "config.get", {});
          if (!base) return;
          r = await call(c, "config.patch", {
            patch: { skills: { entries: { [name]: { enabled: false } } } },
            baseHash: base.payload.hash,
          });
          if (!r) return;
          if (r.ok || !/hash/i.test(JSON.stringify(r.error))) break;
        }
        if (!r?.ok) throw new Error(`config.patch ${tag}: ${JSON.stringify(r?.error)}`);
        acked.config.add(name);
      } else if (kind === 4) {
        const id = await pairDevice(url);
        if (!id) {
          if (c.isClosed) return;
          continue;
        }
        acked.devices.add(id);
      } else {
        // A new sender writes to the bot; gw's poller turns that into a pairing request
        // (at most 3 wait at a time), and this writer approves whichever request waits
        // first: its own, or one left by an earlier cycle's kill.
        const userId = 700_000 + cycle * 10_000 + w * 1_000 + (n % 1_000);
        await tg.userSays(TG_TOKEN, `hello ${tag}`, { userId, chatId: userId, firstName: tag });
        for (let poll = 0; poll < 40; poll++) {
          const l = await call(c, "telegram.pairing.list", {});
          if (!l) return;
          if (!l.ok) throw new Error(`telegram.pairing.list ${tag}: ${JSON.stringify(l.error)}`);
          const req = l.payload.requests[0];
          if (!req) {
            await new Promise((r) => setTimeout(r, 25));
            continue;
          }
          const r = await call(c, "telegram.pairing.approve", { code: req.code });
          if (!r) return;
          if (r.ok) acked.telegram.add(String(r.payload.senderId));
          // Another writer approved that code first.
          else if (r.error?.code !== "INVALID_REQUEST") {
            throw new Error(`telegram.pairing.approve ${tag}: ${JSON.stringify(r.error)}`);
          }
          break;
        }
      }
    }
  } finally {
    await c.close();
  }
}

/** KV consistency, read straight from `<stateDir>/gw.kv` while no gateway runs. */
export async function checkKv(stateDir: string): Promise<string[]> {
  const problems: string[] = [];
  using kv = await Deno.openKv(`${stateDir}/gw.kv`);
  // Cron: every enabled job with a next run has exactly its due entry; every entry has its job.
  const jobs = new Map<string, AnyFrame>();
  for await (const e of kv.list<AnyFrame>({ prefix: keys.cronJobs() })) {
    jobs.set(e.value.id, e.value);
  }
  const due = new Map<string, number[]>();
  for await (const e of kv.list<string>({ prefix: keys.cronDueAll() })) {
    const at = e.key[e.key.length - 2] as number;
    const id = e.key[e.key.length - 1] as string;
    if (e.value !== id) problems.push(`cron due entry ${at}/${id} holds ${e.value}`);
    due.set(id, [...(due.get(id) ?? []), at]);
  }
  for (const [id, job] of jobs) {
    const want = job.enabled && job.state?.nextRunAtMs !== undefined ? job.state.nextRunAtMs : null;
    const have = due.get(id) ?? [];
    if (want === null ? have.length !== 0 : have.length !== 1 || have[0] !== want) {
      problems.push(`cron job ${id}: next run ${want}, due index ${JSON.stringify(have)}`);
    }
  }
  for (const id of due.keys()) {
    if (!jobs.has(id)) problems.push(`cron due entry for a missing job ${id}`);
  }
  for await (const e of kv.list<string>({ prefix: keys.cronRunningAll() })) {
    if (!jobs.has(e.value)) problems.push(`cron running marker for a missing job ${e.value}`);
  }
  // Pending inputs belong to a session that exists.
  for await (const e of kv.list({ prefix: keys.allPendingInputs() })) {
    const sessionKey = e.key[keys.allPendingInputs().length] as string;
    if (!(await kv.get(keys.session(sessionKey))).value) {
      problems.push(`pending input ${JSON.stringify(e.key)} without its session`);
    }
  }
  return problems;
}

/** Every acknowledged write, read back through the protocol from a restarted gateway. */
export async function checkAcked(url: string, acked: Acked): Promise<string[]> {
  const problems: string[] = [];
  const c = await open(url);
  if (!c) return ["could not connect to the restarted gateway"];
  const must = async (method: string, params: unknown): Promise<AnyFrame> => {
    const r = await c.request(method, params);
    if (!r.ok) throw new Error(`${method}: ${JSON.stringify(r.error)}`);
    return r.payload;
  };
  try {
    const sessions: AnyFrame[] = [];
    for (;;) {
      const page = (await must("sessions.list", { limit: 1000, offset: sessions.length })).sessions;
      sessions.push(...page);
      if (page.length < 1000) break;
    }
    // Every session's history is readable, the chaos ones hold their acked messages.
    for (const s of sessions) {
      const h = await must("chat.history", { sessionKey: s.key, limit: 1000 });
      if (!Array.isArray(h.messages)) problems.push(`history of ${s.key} unreadable`);
    }
    for (const [sessionKey, messages] of acked.chat) {
      const h = await must("chat.history", { sessionKey, limit: 1000 });
      const users = new Set<string>(
        h.messages.filter((m: AnyFrame) => m.role === "user").map((m: AnyFrame): string =>
          typeof m.content === "string" ? m.content : JSON.stringify(m.content)
        ),
      );
      for (const m of messages) {
        if (![...users].some((u) => u.includes(m))) problems.push(`lost chat message "${m}"`);
      }
    }
    for (const [key, label] of acked.labels) {
      const found = (await must("sessions.list", { label })).sessions;
      if (found.length !== 1 || !String(found[0].key).endsWith(key)) {
        problems.push(`lost label "${label}" of ${key}`);
      }
    }
    const jobs = new Set<string>();
    for (;;) {
      const page = await must("cron.list", { includeDisabled: true, offset: jobs.size });
      for (const j of page.jobs) jobs.add(j.id);
      if (!page.hasMore || page.jobs.length === 0) break;
    }
    for (const id of acked.cron) if (!jobs.has(id)) problems.push(`lost cron job ${id}`);
    const cfg = await must("config.get", {});
    const entries = cfg.parsed?.skills?.entries ?? {};
    for (const name of acked.config) {
      if (!(name in entries)) problems.push(`lost config value skills.entries.${name}`);
    }
    const paired = new Set(
      (await must("device.pair.list", {})).paired.map((d: AnyFrame) => d.deviceId),
    );
    for (const id of acked.devices) if (!paired.has(id)) problems.push(`lost device ${id}`);
    if (acked.telegram.size) {
      const list = await c.request("telegram.pairing.list", {});
      if (!list.ok) problems.push(`telegram.pairing.list: ${JSON.stringify(list.error)}`);
      else {
        const allowed = new Set(list.payload.allowed.map((a: AnyFrame) => String(a.senderId)));
        for (const id of acked.telegram) {
          if (!allowed.has(id)) problems.push(`lost Telegram approval of sender ${id}`);
        }
      }
    }
  } finally {
    await c.close();
  }
  return problems;
}

/** Run `cycles` kill/restart cycles on one state dir. */
export async function runChaos(opts: ChaosOptions): Promise<ChaosResult> {
  const seed = opts.seed ?? Date.now();
  const rand = mulberry32(seed);
  const log = opts.log ?? (() => {});
  const [minKill, maxKill] = opts.killAfterMs ?? [150, 1200];
  const writers = opts.writers ?? 4;
  const stateDir = await Deno.makeTempDir({ prefix: "gw-chaos-" });
  const fake: FakeAnthropic = await startFakeAnthropic({ apiKey: "k-test" });
  const tg = await TelegramApi.start({ tokens: { [TG_TOKEN]: { username: "gw_chaos_bot" } } });
  // Replies stream slowly so turns are in flight when the kill comes.
  fake.script(() => ({
    blocks: [{ type: "text", text: ["chaos ", "reply ", "here"] }],
    delayMs: 40,
  }));
  const acked = emptyAcked();
  const problems: string[] = [];
  let passed = 0;
  try {
    await Deno.writeTextFile(
      `${stateDir}/gw.json`,
      JSON.stringify({
        agents: { defaults: { model: "anthropic/claude-sonnet-4-6" } },
        models: { providers: { anthropic: { apiKey: "k-test", baseUrl: fake.url } } },
        channels: { telegram: { botToken: TG_TOKEN, apiRoot: tg.apiRoot, dmPolicy: "pairing" } },
      }),
    );
    let child = await GwChild.start(stateDir);
    try {
      for (let cycle = 1; cycle <= opts.cycles; cycle++) {
        const killAt = minKill + rand() * (maxKill - minKill);
        const found: string[] = [];
        const guard = (p: Promise<void>): Promise<void> =>
          p.catch((e) => void found.push(`writer: ${e}`));
        const work: Promise<void>[] = Array.from(
          { length: writers },
          (_, w) => guard(writer(child.url, cycle, w, rand, acked, tg)),
        );
        // One extra signed device per cycle at a random point, so pairing is always in the mix.
        const url = child.url;
        work.push(guard(
          new Promise<void>((r) => setTimeout(r, rand() * killAt)).then(async () => {
            const id = await pairDevice(url);
            if (id) acked.devices.add(id);
          }),
        ));
        await new Promise((r) => setTimeout(r, killAt));
        child.child.kill("SIGKILL");
        await child.kill();
        await Promise.all(work);
        found.push(...await checkKv(stateDir));
        child = await GwChild.start(stateDir);
        found.push(...await checkAcked(child.url, acked));
        if (found.length === 0) passed++;
        else problems.push(...found.map((p) => `cycle ${cycle}: ${p}`));
        log(
          `cycle ${cycle}/${opts.cycles}: killed after ${Math.round(killAt)} ms; acked so far ` +
            `${acked.chat.size ? [...acked.chat.values()].flat().length : 0} chat, ` +
            `${acked.labels.size} labels, ${acked.cron.size} cron, ${acked.config.size} config, ` +
            `${acked.devices.size} devices, ${acked.telegram.size} Telegram approvals; ${
              found.length ? `${found.length} PROBLEMS` : "all there"
            }`,
        );
        for (const p of found.slice(0, 5)) log(`  ${p}`);
      }
    } finally {
      await child.kill();
    }
  } finally {
    await fake.close();
    await tg.close();
    await Deno.remove(stateDir, { recursive: true }).catch(() => {});
  }
  return {
    cycles: opts.cycles,
    passed,
    acked: {
      chat: [...acked.chat.values()].flat().length,
      labels: acked.labels.size,
      cron: acked.cron.size,
      config: acked.config.size,
      devices: acked.devices.size,
      telegram: acked.telegram.size,
    },
    problems,
    seed,
  };
}

if (import.meta.main) {
  const i = Deno.args.indexOf("--cycles");
  const cycles = i >= 0 ? Number(Deno.args[i + 1]) : 50;
  const s = Deno.args.indexOf("--seed");
  const seed = s >= 0 ? Number(Deno.args[s + 1]) : undefined;
  if (!Number.isInteger(cycles) || cycles < 1) {
    console.error("usage: deno task chaos [--cycles N] [--seed S]");
    Deno.exit(2);
  }
  const t0 = performance.now();
  const r = await runChaos({ cycles, log: console.log, ...(seed !== undefined ? { seed } : {}) });
  console.log(
    `\n${r.passed}/${r.cycles} kill -9 cycles with nothing acknowledged lost and KV consistent ` +
      `(seed ${r.seed}, ${Math.round((performance.now() - t0) / 1000)} s); acknowledged writes: ` +
      JSON.stringify(r.acked),
  );
  for (const p of r.problems) console.log(`PROBLEM ${p}`);
  Deno.exit(r.passed === r.cycles ? 0 : 1);
}
