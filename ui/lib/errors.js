/**
 * Errors in words a person understands. The gateway's own messages are kept
 * (they say what was expected and what came); connection failures, time-outs
 * and the auth codes of a refused connect get a sentence that says what to do.
 *
 * @module
 */

/** Sentences for `details.code` of a refused connect. */
const CONNECT_CODES = {
  AUTH_TOKEN_MISMATCH:
    "That token is not right. The gateway's token is in the file named token in its state folder, or gateway.auth.token in gw.json.",
  AUTH_PASSWORD_MISMATCH:
    "That password is not right. It is gateway.auth.password in the gateway's gw.json.",
  AUTH_TOKEN_MISSING: "Type the gateway's token to connect.",
  AUTH_PASSWORD_MISSING: "Type the gateway's password to connect.",
  AUTH_RATE_LIMITED: "Too many wrong tries from this address. Wait a minute, then try again.",
  AUTH_DEVICE_TOKEN_MISMATCH:
    "This browser's device token was revoked or is no longer valid. Log in with the gateway's token again.",
  CONTROL_UI_ORIGIN_NOT_ALLOWED:
    "The gateway refused this page's address. Open the page at http://127.0.0.1:<port>, or add this address to gateway.allowedOrigins in gw.json.",
  PAIRING_REQUIRED:
    "This browser is waiting to be paired. Approve it on the gateway: gw devices approve (or from another paired Control UI, on the Devices page).",
  DEVICE_IDENTITY_REQUIRED: "The gateway wants a device identity this browser could not give.",
};

/**
 * The words for `e`: a GatewayRequestError's message (or a sentence for a
 * known connect code), a sentence for a lost connection or a time-out, else
 * the error's own message.
 * @param {unknown} e
 * @returns {string}
 */
export function describeError(e) {
  if (!e || typeof e !== "object") return String(e ?? "Something went wrong.");
  const err = /** @type {any} */ (e);
  const code = err.details?.code;
  if (err.name === "GatewayRequestError") {
    if (typeof code === "string" && code in CONNECT_CODES && err.method === "connect") {
      const base = CONNECT_CODES[/** @type {keyof typeof CONNECT_CODES} */ (code)];
      if (code === "AUTH_RATE_LIMITED" && typeof err.retryAfterMs === "number") {
        return `Too many wrong tries from this address. Try again in ${
          Math.max(1, Math.ceil(err.retryAfterMs / 1000))
        } s.`;
      }
      if (code === "PAIRING_REQUIRED" && err.details?.requestId) {
        return `${base} Request: ${err.details.requestId}.`;
      }
      return base;
    }
    const msg = String(err.message || "The gateway refused the request.");
    return msg.charAt(0).toUpperCase() + msg.slice(1);
  }
  if (err.name === "GatewayTimeoutError") {
    return `The gateway did not answer ${err.method ?? "the request"} in time (${
      Math.round((err.timeoutMs ?? 0) / 1000)
    } s). It may be busy; try again.`;
  }
  if (err.name === "GatewayConnectError") {
    if (/the client is (reconnecting|connecting|closed)/.test(String(err.message))) {
      return "Not connected to the gateway right now. It will reconnect by itself; try again in a moment.";
    }
    if (err.closeCode === 1012) return "The gateway is restarting. Reconnecting…";
    return "Cannot reach the gateway. Is gw running? This page reconnects by itself when it is back.";
  }
  if (err.name === "AbortError") return "Cancelled.";
  return String(err.message || err);
}

/**
 * An Error carrying the words of {@link describeError} as its message and the
 * gateway's `code` and `details`, for pages (`app.request` throws these).
 * @param {unknown} e
 * @returns {Error & { code?: string, details?: unknown, cause?: unknown }}
 */
export function toUiError(e) {
  const err = /** @type {any} */ (new Error(describeError(e)));
  const src = /** @type {any} */ (e);
  if (src && typeof src === "object") {
    if (typeof src.code === "string") err.code = src.code;
    if (src.details !== undefined) err.details = src.details;
    if (src.retryable !== undefined) err.retryable = src.retryable;
    if (src.retryAfterMs !== undefined) err.retryAfterMs = src.retryAfterMs;
    if (src.name === "GatewayConnectError") err.code ??= "NOT_CONNECTED";
    if (src.name === "GatewayTimeoutError") err.code ??= "TIMEOUT";
  }
  err.cause = e;
  return err;
}
