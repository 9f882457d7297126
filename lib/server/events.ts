/**
 * Which connections may see which event. One table; unknown events fail
 * closed (admin only).
 *
 * @module
 */

/**
 * `any`: every authenticated connection, nodes included; `operator`: every
 * operator; otherwise the operator scope the event's data needs.
 */
export type EventAudience = "any" | "operator" | string;

const EVENT_SCOPES: Record<string, EventAudience> = {
  tick: "any",
  shutdown: "any",
  health: "operator",
  presence: "operator.read",
  heartbeat: "operator.read",
  agent: "operator.read",
  chat: "operator.read",
  "session.message": "operator.read",
  "session.tool": "operator.read",
  "sessions.changed": "operator.read",
  cron: "operator.read",
  "talk.mode": "operator.read",
  "voicewake.changed": "operator.read",
  "exec.approval.requested": "operator.approvals",
  "exec.approval.resolved": "operator.approvals",
  "device.pair.requested": "operator.pairing",
  "device.pair.resolved": "operator.pairing",
  "node.pair.requested": "operator.pairing",
  "node.pair.resolved": "operator.pairing",
};

/** The audience of `event`. */
export function eventScope(event: string): EventAudience {
  return EVENT_SCOPES[event] ?? "operator.admin";
}
