/**
 * Event-loop and CPU figures for `health` and `status`: timer lateness sampled
 * every 500 ms, and the process's CPU time over the last minute.
 *
 * @module
 */
import type { EventLoopStats } from "../protocol/types.ts";

const INTERVAL_MS = 500;
const WINDOW = 120;
/** Timer lateness (p99) that counts as a degraded loop. */
const DEGRADED_DELAY_MS = 200;
/** CPU time per wall time that counts as a busy process. */
const DEGRADED_CPU_RATIO = 0.9;

interface Sample {
  delayMs: number;
  cpuUs: number;
  wallUs: number;
}

/** `Deno.cpuUsage` exists at run time in Deno 2.9 but is not in its type declarations. */
const denoCpu = (Deno as unknown as { cpuUsage?: () => { user: number; system: number } })
  .cpuUsage;

/**
 * The process's CPU time in microseconds, or null where it cannot be read.
 * Not node:process's cpuUsage: loading node:process costs about 1.5 MB of RSS.
 */
function cpuUs(): number | null {
  if (typeof denoCpu === "function") {
    const u = denoCpu();
    return u.user + u.system;
  }
  try {
    // Linux: utime and stime, in clock ticks (100 per second), after the command name.
    const stat = Deno.readTextFileSync("/proc/self/stat");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) * 10_000;
  } catch {
    return null;
  }
}

/** Samples timer lateness and CPU time over the last minute. */
export class EventLoopMonitor {
  #samples: Sample[] = [];
  #timer: ReturnType<typeof setInterval> | undefined;
  #lastWall = 0;
  #lastCpu = 0;
  #degradedSince: number | null = null;

  /** Start sampling. */
  start(): void {
    this.#lastWall = performance.now();
    this.#lastCpu = cpuUs() ?? 0;
    this.#timer = setInterval(() => {
      const now = performance.now();
      const cpu = cpuUs() ?? 0;
      this.#samples.push({
        delayMs: Math.max(0, now - this.#lastWall - INTERVAL_MS),
        cpuUs: cpu - this.#lastCpu,
        wallUs: (now - this.#lastWall) * 1000,
      });
      this.#lastWall = now;
      this.#lastCpu = cpu;
      if (this.#samples.length > WINDOW) this.#samples.shift();
    }, INTERVAL_MS);
    Deno.unrefTimer(this.#timer as unknown as number);
  }

  /** Stop sampling. */
  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /**
   * Figures over the window. `utilization` is CPU time per wall time capped
   * at 1: Deno has no event-loop utilization counter, and a loop that is
   * busy is a process that burns CPU. `cpuCoreRatio` is the same uncapped
   * (above 1 when several threads work).
   */
  stats(): EventLoopStats {
    const s = this.#samples;
    const delays = s.map((x) => x.delayMs).sort((a, b) => a - b);
    const p99 = delays.length
      ? delays[Math.min(delays.length - 1, Math.floor(delays.length * 0.99))]!
      : 0;
    const max = delays.length ? delays[delays.length - 1]! : 0;
    const wall = s.reduce((a, x) => a + x.wallUs, 0);
    const ratio = wall > 0 ? s.reduce((a, x) => a + x.cpuUs, 0) / wall : 0;
    const reasons: string[] = [];
    if (p99 >= DEGRADED_DELAY_MS) reasons.push("event_loop_delay");
    if (ratio >= DEGRADED_CPU_RATIO) reasons.push("cpu");
    const degraded = reasons.length > 0;
    const now = performance.now();
    if (!degraded) this.#degradedSince = null;
    else this.#degradedSince ??= now;
    const round = (n: number, d: number) => Math.round(n * d) / d;
    return {
      degraded,
      degradedSinceMs: this.#degradedSince === null ? null : Math.round(now - this.#degradedSince),
      reasons,
      intervalMs: INTERVAL_MS,
      delayP99Ms: round(p99, 10),
      delayMaxMs: round(max, 10),
      utilization: round(Math.min(1, ratio), 1000),
      cpuCoreRatio: round(ratio, 1000),
    };
  }
}
