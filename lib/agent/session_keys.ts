/**
 * Session keys as OpenClaw writes them (REFERENCE.md 1.9): `agent:<id>:<rest>`,
 * with bare keys (`main`, `project`) belonging to the default agent and
 * `cron:` / `hook:` keys kept as they are.
 *
 * @module
 */

/** A session key that cannot be made canonical. */
export class SessionKeyError extends Error {
  /** Create one. */
  constructor(key: string) {
    super(`invalid session key: ${key}`);
    this.name = "SessionKeyError";
  }
}

/** The canonical form of `key`; the agent id is lowercase. Throws {@link SessionKeyError}. */
export function canonicalKey(key: string, defaultAgentId: string): string {
  const k = key.trim();
  if (k.startsWith("agent:")) {
    const [, agent, ...rest] = k.split(":");
    if (!agent || rest.length === 0 || rest.join(":") === "") throw new SessionKeyError(k);
    return `agent:${agent.toLowerCase()}:${rest.join(":")}`;
  }
  if (/^(cron|hook):/.test(k)) return k;
  if (!k) throw new SessionKeyError(k);
  return `agent:${defaultAgentId}:${k}`;
}
