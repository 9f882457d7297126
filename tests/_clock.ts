/**
 * A clock tests advance by hand, injected into the gateway for tick, health
 * and heartbeat timers.
 */
import type { Clock, TimerHandle } from "../lib/clock.ts";

interface Timer {
  fn: () => void;
  every: number;
  due: number;
}

/** A manual clock: `advance(ms)` fires every interval that falls due, in order. */
export class ManualClock implements Clock {
  #now: number;
  #timers = new Map<number, Timer>();
  #next = 1;

  constructor(start = Date.UTC(2026, 10, 22, 8, 0, 0)) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setInterval(fn: () => void, ms: number): TimerHandle {
    const id = this.#next++;
    this.#timers.set(id, { fn, every: ms, due: this.#now + ms });
    return id as unknown as TimerHandle;
  }

  clearInterval(handle: TimerHandle): void {
    this.#timers.delete(handle as unknown as number);
  }

  /** Number of armed intervals. */
  get pending(): number {
    return this.#timers.size;
  }

  /** Move time forward by `ms`, firing due intervals in time order. */
  advance(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      let first: Timer | undefined;
      for (const t of this.#timers.values()) {
        if (t.due <= end && (!first || t.due < first.due)) first = t;
      }
      if (!first) break;
      this.#now = first.due;
      first.due += first.every;
      first.fn();
    }
    this.#now = end;
  }
}
