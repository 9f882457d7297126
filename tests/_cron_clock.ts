/**
 * Helpers for the scheduler tests: a {@link ManualClock} whose wall clock can
 * jump (as a system clock change does) while timers keep running on monotonic
 * time, and which shows the scheduler's armed timeout; and a polling wait
 * with a real-time bound.
 */
import type { TimerHandle } from "../lib/clock.ts";
import { ManualClock } from "./_clock.ts";

/**
 * A manual clock for the scheduler. `now()` is the wall clock: the manual
 * (monotonic) time plus an offset that {@link SchedClock.jump} moves. Timers
 * are due on the monotonic time, so a jump fires nothing by itself, and an
 * armed timeout fires after its remaining delay, as real timers do.
 */
export class SchedClock extends ManualClock {
  #offset = 0;
  /** Armed timeouts: handle to monotonic due time. */
  readonly #timeouts = new Map<TimerHandle, number>();
  /** How many timeouts were ever armed (the scheduler is the only user of setTimeout). */
  armed = 0;

  override now(): number {
    return super.now() + this.#offset;
  }

  /** Move the wall clock by `deltaMs` (negative: back); armed timers keep their remaining delay. */
  jump(deltaMs: number): void {
    this.#offset += deltaMs;
  }

  override setTimeout(fn: () => void, ms: number): TimerHandle {
    this.armed++;
    const mono = super.now();
    const h: TimerHandle = super.setTimeout(() => {
      this.#timeouts.delete(h);
      fn();
    }, ms);
    this.#timeouts.set(h, mono + Math.max(0, ms));
    return h;
  }

  override clearTimeout(handle: TimerHandle): void {
    this.#timeouts.delete(handle);
    super.clearTimeout(handle);
  }

  /** Wall time at which the earliest armed timeout fires, or undefined when none is armed. */
  get nextTimeoutAt(): number | undefined {
    let min: number | undefined;
    for (const due of this.#timeouts.values()) if (min === undefined || due < min) min = due;
    return min === undefined ? undefined : min + this.#offset;
  }
}

/** Poll `fn` every 10 ms (real time) until it returns a truthy value; fail after `ms`. */
export async function until<T>(
  what: string,
  fn: () => T | Promise<T>,
  ms = 3000,
): Promise<NonNullable<T>> {
  const deadline = performance.now() + ms;
  let last: T | undefined;
  for (;;) {
    last = await fn();
    if (last) return last as NonNullable<T>;
    if (performance.now() > deadline) {
      throw new Error(
        `timed out after ${ms} ms waiting for ${what}; last: ${JSON.stringify(last)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Wait `ms` of real time. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
