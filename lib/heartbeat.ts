/**
 * The heartbeat scheduler: every `agents.defaults.heartbeat.every` (per agent
 * overrides allowed) it runs one heartbeat for each agent, records it
 * (`last-heartbeat`) and broadcasts the `heartbeat` event. `set-heartbeats`
 * switches it on and off, persistently.
 *
 * A heartbeat is an agent turn. Until an agent runtime is registered with
 * {@link HeartbeatRunner.setRunner}, each due heartbeat is recorded as
 * `skipped` with reason `no-agent-runtime`, which is what happened.
 *
 * @module
 */
import type { Clock, TimerHandle } from "./clock.ts";
import type { GwConfig } from "./config/schema.ts";
import { parseDuration } from "./duration.ts";
import type { HeartbeatInfo, HeartbeatRecord } from "./protocol/types.ts";

/** Runs one heartbeat for an agent and says how it went. */
export type HeartbeatFn = (agentId: string) => Promise<Omit<HeartbeatRecord, "ts" | "agentId">>;

/** Where the runner reports. */
export interface HeartbeatSink {
  record(record: HeartbeatRecord): Promise<void>;
}

/** Heartbeat settings of each agent, resolved from the config. */
export function heartbeatSettings(config: GwConfig): ({ agentId: string } & HeartbeatInfo)[] {
  const defaults = config.agents.defaults.heartbeat;
  const agents = config.agents.list.length ? config.agents.list : [{ id: "main" }];
  return agents.map((a) => {
    const own = "heartbeat" in a ? a.heartbeat : undefined;
    const every = own?.every ?? defaults.every;
    const everyMs = parseDuration(every) ?? 0;
    return {
      agentId: a.id,
      enabled: (own?.enabled ?? defaults.enabled) && everyMs > 0,
      every,
      everyMs,
    };
  });
}

/** The scheduler. */
export class HeartbeatRunner {
  #clock: Clock;
  #sink: HeartbeatSink;
  #timers: TimerHandle[] = [];
  #enabled = true;
  #run: HeartbeatFn = () => Promise.resolve({ status: "skipped", reason: "no-agent-runtime" });

  /** Create a stopped runner. */
  constructor(clock: Clock, sink: HeartbeatSink) {
    this.#clock = clock;
    this.#sink = sink;
  }

  /** Whether heartbeats run at all (the `set-heartbeats` switch). */
  get enabled(): boolean {
    return this.#enabled;
  }

  /** Register the agent runtime that performs heartbeats. */
  setRunner(fn: HeartbeatFn): void {
    this.#run = fn;
  }

  /** (Re)arm timers for `config` with the switch at `enabled`. */
  configure(config: GwConfig, enabled: boolean): void {
    this.stop();
    this.#enabled = enabled;
    if (!enabled) return;
    for (const s of heartbeatSettings(config)) {
      if (!s.enabled) continue;
      this.#timers.push(this.#clock.setInterval(() => void this.beat(s.agentId), s.everyMs));
    }
  }

  /** Run one heartbeat for `agentId` now and record it. */
  async beat(agentId: string): Promise<HeartbeatRecord> {
    const started = this.#clock.now();
    let outcome: Omit<HeartbeatRecord, "ts" | "agentId">;
    try {
      outcome = await this.#run(agentId);
    } catch (e) {
      outcome = { status: "failed", reason: e instanceof Error ? e.message : String(e) };
    }
    const record: HeartbeatRecord = {
      ts: started,
      agentId,
      ...outcome,
      durationMs: this.#clock.now() - started,
    };
    await this.#sink.record(record);
    return record;
  }

  /** Stop all timers. */
  stop(): void {
    for (const t of this.#timers) this.#clock.clearInterval(t);
    this.#timers = [];
  }
}
