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

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = this.#next++;
    this.#timers.set(id, { fn, every: 0, due: this.#now + Math.max(0, ms) });
    return id as unknown as TimerHandle;
  }

  clearTimeout(handle: TimerHandle): void {
    this.#timers.delete(handle as unknown as number);
  }

  /** Set the time (a jump, as when the system clock is changed); fires nothing by itself. */
  set(ms: number): void {
    this.#now = ms;
  }

  /** Number of armed intervals (one-shot timeouts not counted). */
  get pending(): number {
    let n = 0;
    for (const t of this.#timers.values()) if (t.every > 0) n++;
    return n;
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
      if (first.every > 0) first.due += first.every;
      else {
        for (const [id, t] of this.#timers) if (t === first) this.#timers.delete(id);
      }
      first.fn();
    }
    this.#now = end;
  }
}
