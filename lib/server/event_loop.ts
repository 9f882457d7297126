/**
 * Event-loop delay, sampled by how late a 500 ms timer fires.
 *
 * @module
 */
import type { EventLoopStats } from "../protocol/types.ts";

const INTERVAL_MS = 500;
const WINDOW = 120;

/** Samples timer lateness over the last minute. */
export class EventLoopMonitor {
  #samples: number[] = [];
  #timer: ReturnType<typeof setInterval> | undefined;
  #last = 0;

  /** Start sampling. */
  start(): void {
    this.#last = performance.now();
    this.#timer = setInterval(() => {
      const now = performance.now();
      const delay = Math.max(0, now - this.#last - INTERVAL_MS);
      this.#last = now;
      this.#samples.push(delay);
      if (this.#samples.length > WINDOW) this.#samples.shift();
    }, INTERVAL_MS);
    Deno.unrefTimer(this.#timer as unknown as number);
  }

  /** Stop sampling. */
  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Delay figures over the window. */
  stats(): EventLoopStats {
    const sorted = [...this.#samples].sort((a, b) => a - b);
    const p99 = sorted.length
      ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]!
      : 0;
    const max = sorted.length ? sorted[sorted.length - 1]! : 0;
    return {
      degraded: p99 > 200,
      delayP99Ms: Math.round(p99 * 10) / 10,
      delayMaxMs: Math.round(max * 10) / 10,
      intervalMs: INTERVAL_MS,
    };
  }
}
