/**
 * `system.run` on a node, as `node.invoke` and the agent's exec tool both do
 * it: the node resolves the binary, the node's host policy and a person
 * decide on exactly that, and the node is sent exactly what was approved
 * (which it checks again before running it in its sandbox).
 *
 * @module
 */
import { GatewayError, invalidRequest } from "../protocol/errors.ts";
import { ErrorCode } from "../protocol/types.ts";
import type { NodeRegistry } from "../server/nodes.ts";
import type { ExecApprovals, Invocation } from "./approvals.ts";
import { parseCommand } from "./command.ts";

/** `system.run` on a node: resolve the binary there, check the node's policy, ask, then run exactly that. */
export async function runOnNode(
  deps: { nodes: NodeRegistry; approvals: ExecApprovals },
  id: string,
  params: Record<string, unknown>,
  timeoutMs: number,
  agentId: string,
  sessionKey: string | undefined,
) {
  const argv = params.argv ?? params.command;
  if (
    !(typeof argv === "string" || (Array.isArray(argv) && argv.every((a) => typeof a === "string")))
  ) {
    throw invalidRequest(
      "invalid node.invoke params: params.params.argv: expected an array of strings",
    );
  }
  const parsed = parseCommand(argv as string | string[]);
  if (parsed.refused || parsed.segments.length !== 1) {
    throw invalidRequest(
      `command refused: ${parsed.refused?.reason ?? "chain"} (shell features are never run)`,
      { code: "COMMAND_REFUSED", reason: parsed.refused?.reason ?? "chain" },
    );
  }
  const [name, ...args] = parsed.segments[0]!.argv;
  const which = await deps.nodes.invoke(
    id,
    "system.which",
    { name },
    Math.min(timeoutMs, 10_000),
  ) as {
    path?: string | null;
  };
  if (!which?.path) {
    throw invalidRequest(`command not found on node ${id}: ${name}`, { code: "COMMAND_NOT_FOUND" });
  }
  const cwd = typeof params.cwd === "string" ? params.cwd : "/";
  const env = (params.env && typeof params.env === "object" ? params.env : {}) as Record<
    string,
    string
  >;
  const inv: Invocation = { binary: which.path, args, cwd, env };
  const host = `node:${id}`;
  const verdict = await deps.approvals.check(host, agentId, inv);
  if (verdict === "deny") {
    throw new GatewayError(
      ErrorCode.INVALID_REQUEST,
      "denied: the node's exec policy does not allow this command",
      {
        details: { code: "EXEC_DENIED", decidedBy: "policy" },
      },
    );
  }
  if (verdict === "ask") {
    const req = deps.approvals.request(host, agentId, inv, {
      nodeId: id,
      ...(sessionKey ? { sessionKey } : {}),
    });
    const decided = await deps.approvals.waitDecision(req.id, req.expiresAtMs - Date.now() + 1000);
    if (!decided || decided.decision === "deny") {
      throw new GatewayError(
        ErrorCode.INVALID_REQUEST,
        `denied by ${decided?.decidedBy ?? "nobody in time"}`,
        {
          details: {
            code: "EXEC_DENIED",
            decidedBy: decided?.decidedBy ?? null,
            approvalId: req.id,
          },
        },
      );
    }
  }
  // The node gets exactly what was approved, and checks it is still that binary.
  const payload = await deps.nodes.invoke(
    id,
    "system.run",
    { ...inv, timeoutMs },
    timeoutMs + 5000,
  );
  return payload;
}
