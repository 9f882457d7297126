/**
 * The one error type a method handler throws. The server turns it into the
 * error frame in one place.
 *
 * @module
 */
import { ErrorCode, type ErrorShape } from "./types.ts";

/** Options of a {@link GatewayError}. */
export interface GatewayErrorOptions {
  /** Machine-readable details; `details.code` names the precise failure. */
  details?: Record<string, unknown>;
  /** Whether the same request may succeed later. */
  retryable?: boolean;
  /** How long to wait before retrying. */
  retryAfterMs?: number;
  /** The underlying error, kept for logs, never sent. */
  cause?: unknown;
  /** A payload sent beside the error (the `agent` final reply of a failed run). */
  payload?: unknown;
}

/**
 * An error answered to the client as `{code, message, details?, retryable?, retryAfterMs?}`.
 *
 * @example
 * ```ts
 * throw new GatewayError("INVALID_REQUEST", "params.limit: expected a number, got string");
 * ```
 */
export class GatewayError extends Error {
  /** The protocol error code. */
  readonly code: string;
  /** Details sent with the error. */
  readonly details: Record<string, unknown> | undefined;
  /** Whether the request may succeed when retried. */
  readonly retryable: boolean | undefined;
  /** Suggested wait before retrying. */
  readonly retryAfterMs: number | undefined;
  /** Sent as the response's `payload` beside the error. */
  readonly payload: unknown;

  /** Create an error with a protocol `code` and a readable `message`. */
  constructor(code: string, message: string, options: GatewayErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "GatewayError";
    this.code = code;
    this.details = options.details;
    this.retryable = options.retryable;
    this.retryAfterMs = options.retryAfterMs;
    this.payload = options.payload;
  }

  /** The wire shape of this error. */
  toShape(): ErrorShape {
    const shape: ErrorShape = { code: this.code, message: this.message };
    if (this.details !== undefined) shape.details = this.details;
    if (this.retryable !== undefined) shape.retryable = this.retryable;
    if (this.retryAfterMs !== undefined) shape.retryAfterMs = this.retryAfterMs;
    return shape;
  }
}

/** Shorthand for an `INVALID_REQUEST` error. */
export function invalidRequest(
  message: string,
  details?: Record<string, unknown>,
): GatewayError {
  return new GatewayError(ErrorCode.INVALID_REQUEST, message, details ? { details } : {});
}
