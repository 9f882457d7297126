/**
 * The agent's `exec` tool: a command on the gateway's machine, through
 * exactly the approval flow people use (policy, then a person), run in the
 * sandbox. The turn waits for the decision; a refusal or a denial comes back
 * to the model as a tool result, never as a crash.
 *
 * @module
 */
import type { Tool } from "../agent/tools.ts";
import type { ExecApprovals } from "./approvals.ts";
import { CommandRefused, invocationOf } from "./invocation.ts";
import { runSandboxed } from "./sandbox.ts";
import { runOnNode } from "./remote.ts";
import type { NodeRegistry } from "../server/nodes.ts";
import { GatewayError } from "../protocol/errors.ts";

/** Most output the model gets back, per stream. */
const MAX_OUTPUT_BYTES = 32 * 1024;

/** What the tool needs. */
export interface ExecToolDeps {
  approvals: ExecApprovals;
  /** Connected nodes, for `node`: commands on another machine. */
  nodes?: NodeRegistry;
  /** Where commands run when the model names no cwd. */
  defaultCwd: () => string;
  /** How long a person has to answer. */
  approvalTimeoutMs?: number;
}

/** The `exec` tool. */
export function execTool(deps: ExecToolDeps): Tool {
  return {
    name: "exec",
    description:
      "Run one command on the gateway's machine, or on a node (no shell: no pipes, redirections or $()). " +
      "A person approves each new command unless policy already allows it; you get its exit code and output.",
    inputSchema: {
      type: "object",
      properties: {
        argv: {
          type: "array",
          items: { type: "string" },
          description: 'The program and its arguments, e.g. ["df", "-h", "/"]',
        },
        cwd: { type: "string", description: "Working directory (absolute)" },
        timeoutSeconds: { type: "number", description: "Kill it after this long (default 60)" },
        node: { type: "string", description: "Run on this node (its id) instead of the gateway" },
      },
      required: ["argv"],
      additionalProperties: false,
    },
    async run(input, ctx) {
      const argv = input.argv;
      if (!Array.isArray(argv) || argv.length === 0 || !argv.every((a) => typeof a === "string")) {
        return { isError: true, text: "argv must be a non-empty array of strings" };
      }
      const cwd = typeof input.cwd === "string" ? input.cwd : deps.defaultCwd();
      const timeoutMs = Math.min(
        Math.max(1, typeof input.timeoutSeconds === "number" ? input.timeoutSeconds : 60),
        3600,
      ) * 1000;
      if (typeof input.node === "string") {
        if (!deps.nodes) return { isError: true, text: "nodes are not available here" };
        try {
          const p = await runOnNode(
            { nodes: deps.nodes, approvals: deps.approvals },
            input.node,
            { argv, ...(typeof input.cwd === "string" ? { cwd: input.cwd } : {}) },
            timeoutMs,
            ctx.agentId,
            ctx.sessionKey,
          ) as {
            exitCode?: number | null;
            signal?: string | null;
            stdout?: string;
            stderr?: string;
            truncated?: boolean;
            timedOut?: boolean;
          };
          return report(
            p.exitCode ?? null,
            p.signal ?? null,
            p.stdout ?? "",
            p.stderr ?? "",
            !!p.truncated,
            !!p.timedOut,
            timeoutMs,
          );
        } catch (e) {
          // Denied, offline, timed out: the model is told, the turn goes on.
          if (e instanceof GatewayError) return { isError: true, text: e.message };
          throw e;
        }
      }
      let inv;
      try {
        inv = await invocationOf(argv as string[], cwd, {});
      } catch (e) {
        if (e instanceof CommandRefused) return { isError: true, text: e.message };
        throw e;
      }
      const v = await deps.approvals.check("gateway", ctx.agentId, inv);
      if (v === "deny") {
        return { isError: true, text: "denied: the exec policy does not allow this command" };
      }
      if (v === "ask") {
        const req = deps.approvals.request("gateway", ctx.agentId, inv, {
          sessionKey: ctx.sessionKey,
          ...(deps.approvalTimeoutMs ? { timeoutMs: deps.approvalTimeoutMs } : {}),
        });
        // The run being aborted stops the wait (the request stays for a person to see, then expires).
        const decided = await Promise.race([
          deps.approvals.waitDecision(req.id, req.expiresAtMs - Date.now() + 1000),
          new Promise<null>((r) =>
            ctx.signal.addEventListener("abort", () => r(null), { once: true })
          ),
        ]);
        if (!decided || decided.decision === "deny") {
          return {
            isError: true,
            text: decided
              ? `denied by ${decided.decidedBy ?? "a person"}: the command did not run`
              : "no decision: the command did not run",
          };
        }
      }
      const r = await runSandboxed({
        binary: inv.binary,
        args: inv.args,
        cwd: inv.cwd,
        env: inv.env,
        timeoutMs,
        maxOutputBytes: MAX_OUTPUT_BYTES,
        signal: ctx.signal,
      });
      return report(r.code, r.signal, r.stdout, r.stderr, r.truncated, r.timedOut, timeoutMs);
    },
  };
}

/** What the model is told about a finished command. */
function report(
  code: number | null,
  signal: string | null,
  stdout: string,
  stderr: string,
  truncated: boolean,
  timedOut: boolean,
  timeoutMs: number,
): { isError: boolean; text: string } {
  const parts = [timedOut ? `timed out after ${timeoutMs / 1000} s` : `exit ${code ?? signal}`];
  if (stdout) parts.push(`stdout:\n${stdout}`);
  if (stderr) parts.push(`stderr:\n${stderr}`);
  if (truncated) parts.push(`[output cut at ${MAX_OUTPUT_BYTES} bytes per stream]`);
  return { isError: timedOut || code !== 0, text: parts.join("\n") };
}
