/**
 * Time as the gateway's periodic work sees it. Production uses the system
 * clock; tests inject a manual one and advance it.
 *
 * @module
 */

/** A timer handle of {@link Clock}. */
export type TimerHandle = ReturnType<typeof setInterval>;

/** A source of time and interval timers. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Call `fn` every `ms`; returns a handle for {@link Clock.clearInterval}. */
  setInterval(fn: () => void, ms: number): TimerHandle;
  /** Stop an interval. */
  clearInterval(handle: TimerHandle): void;
  /** Call `fn` once after `ms`; returns a handle for {@link Clock.clearTimeout}. */
  setTimeout(fn: () => void, ms: number): TimerHandle;
  /** Cancel a timeout. */
  clearTimeout(handle: TimerHandle): void;
}

/** The real clock. Intervals are unref'd so they never keep a process alive. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setInterval(fn, ms) {
    const id = setInterval(fn, ms);
    Deno.unrefTimer(id);
    return id;
  },
  clearInterval: (id) => clearInterval(id),
  setTimeout(fn, ms) {
    const id = setTimeout(fn, ms);
    Deno.unrefTimer(id);
    return id;
  },
  clearTimeout: (id) => clearTimeout(id),
};
