/**
 * Connected nodes and the invocations in flight to them. A node is a paired
 * device connected with role `node`; `node.invoke` sends `node.invoke.request`
 * to that node's socket only and waits for its `node.invoke.result`.
 *
 * @module
 */
import { GatewayError } from "../protocol/errors.ts";
import { ErrorCode } from "../protocol/types.ts";

/** A connected node. */
export interface LiveNode {
  nodeId: string;
  connId: string;
  displayName?: string;
  platform?: string;
  commands: string[];
  caps: string[];
  remoteIp: string;
  connectedAtMs: number;
  /** Send an event to this node's socket only. */
  send(event: string, payload: unknown): void;
}

interface Pending {
  nodeId: string;
  resolve: (payload: unknown) => void;
  reject: (e: GatewayError) => void;
  timer: ReturnType<typeof setTimeout>;
}

/** The registry. One per gateway. */
export class NodeRegistry {
  readonly #nodes = new Map<string, LiveNode>();
  readonly #pending = new Map<string, Pending>();

  /** A node connected (a newer connection of the same node replaces the older). */
  add(n: LiveNode): void {
    this.#nodes.set(n.nodeId, n);
  }

  /** A node's socket closed: its invocations fail at once. */
  remove(nodeId: string, connId: string): void {
    const n = this.#nodes.get(nodeId);
    if (!n || n.connId !== connId) return;
    this.#nodes.delete(nodeId);
    for (const [id, p] of this.#pending) {
      if (p.nodeId !== nodeId) continue;
      clearTimeout(p.timer);
      this.#pending.delete(id);
      p.reject(
        new GatewayError(
          ErrorCode.UNAVAILABLE,
          `node ${nodeId} disconnected during the invocation`,
          {
            details: { code: "NODE_DISCONNECTED", nodeId },
            retryable: true,
          },
        ),
      );
    }
  }

  /** A connected node, or undefined. */
  get(nodeId: string): LiveNode | undefined {
    return this.#nodes.get(nodeId);
  }

  /** Every connected node. */
  list(): LiveNode[] {
    return [...this.#nodes.values()];
  }

  /**
   * Invoke `command` on `nodeId` and resolve with the node's payload. Rejects
   * `NOT_LINKED` when the node is not connected, `AGENT_TIMEOUT` when it does
   * not answer in time, and with the node's own error when it reports one.
   */
  invoke(nodeId: string, command: string, params: unknown, timeoutMs: number): Promise<unknown> {
    const n = this.#nodes.get(nodeId);
    if (!n) {
      return Promise.reject(
        new GatewayError(ErrorCode.NOT_LINKED, `node ${nodeId} is not connected`, {
          details: { code: "NOT_LINKED", nodeId },
        }),
      );
    }
    if (!n.commands.includes(command)) {
      return Promise.reject(
        new GatewayError(ErrorCode.INVALID_REQUEST, `node ${nodeId} does not offer ${command}`, {
          details: { code: "COMMAND_NOT_OFFERED", nodeId, command, commands: n.commands },
        }),
      );
    }
    const id = crypto.randomUUID();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(
          new GatewayError(
            ErrorCode.AGENT_TIMEOUT,
            `node ${nodeId} did not answer ${command} within ${timeoutMs} ms`,
            {
              details: { code: "NODE_TIMEOUT", nodeId, command },
              retryable: true,
            },
          ),
        );
      }, timeoutMs);
      this.#pending.set(id, { nodeId, resolve, reject, timer });
      n.send("node.invoke.request", { id, nodeId, command, params: params ?? {}, timeoutMs });
    });
  }

  /**
   * A node's answer (`node.invoke.result`). False when no invocation with that
   * id is waiting for this node (late, duplicate, or another node's).
   */
  result(
    nodeId: string,
    id: string,
    ok: boolean,
    payload: unknown,
    error: { code?: string | undefined; message?: string | undefined } | undefined,
  ): boolean {
    const p = this.#pending.get(id);
    if (!p || p.nodeId !== nodeId) return false;
    clearTimeout(p.timer);
    this.#pending.delete(id);
    if (ok) p.resolve(payload);
    else {
      p.reject(
        new GatewayError(ErrorCode.UNAVAILABLE, error?.message ?? "the node reported an error", {
          details: { code: error?.code ?? "NODE_ERROR", nodeId },
        }),
      );
    }
    return true;
  }
}
