/**
 * From what an agent or a client asked to run to exactly what would run: one
 * command (no shell features), its binary resolved to a real absolute path.
 *
 * @module
 */
import { parseCommand, resolveBinary } from "./command.ts";
import type { Invocation } from "./approvals.ts";

/** A command that will not run, with a code for clients. */
export class CommandRefused extends Error {
  /** `COMMAND_REFUSED` or `COMMAND_NOT_FOUND`. */
  readonly code: string;
  /** The refusal reason (redirection, substitution, chain, ...). */
  readonly reason: string | undefined;
  /** Create one. */
  constructor(code: string, message: string, reason?: string) {
    super(message);
    this.name = "CommandRefused";
    this.code = code;
    this.reason = reason;
  }
}

/** The PATH commands resolve against. */
export function pathEnv(): string {
  try {
    return Deno.env.get("PATH") ?? "/usr/local/bin:/usr/bin:/bin";
  } catch {
    return "/usr/local/bin:/usr/bin:/bin";
  }
}

/** Exactly what `command` would run in `cwd` with `env`; throws {@link CommandRefused}. */
export async function invocationOf(
  command: string | string[],
  cwd: string,
  env: Record<string, string>,
): Promise<Invocation> {
  const parsed = parseCommand(command);
  if (parsed.refused) {
    throw new CommandRefused(
      "COMMAND_REFUSED",
      `command refused: ${parsed.refused.reason}${
        parsed.refused.detail ? ` (${parsed.refused.detail})` : ""
      }; shell features are never run, give a plain command or an argv`,
      parsed.refused.reason,
    );
  }
  if (parsed.segments.length !== 1) {
    throw new CommandRefused(
      "COMMAND_REFUSED",
      "command refused: one command at a time (chains, pipes and sequences are not run)",
      "chain",
    );
  }
  const [name, ...args] = parsed.segments[0]!.argv;
  const binary = await resolveBinary(name!, { path: pathEnv(), cwd });
  if (!binary) throw new CommandRefused("COMMAND_NOT_FOUND", `command not found: ${name}`);
  return { binary, args, cwd, env };
}
