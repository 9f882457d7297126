/**
 * What a method handler may use of the gateway. Handlers get this, never the
 * sockets.
 *
 * @module
 */
import type { ConfigFile } from "../config/mod.ts";
import type { Store } from "../store/mod.ts";
import type { Logger } from "../log.ts";
import type { Clock } from "../clock.ts";
import type { EventLoopStats, PresenceEntry } from "../protocol/types.ts";
import type { RawJson } from "./method.ts";
import type { HeartbeatRunner } from "../heartbeat.ts";
import type { AgentRuntime } from "../agent/runtime.ts";
import type { ToolRegistry } from "../agent/tools.ts";
import type { Skills } from "../skills/mod.ts";
import type { MediaStore } from "../agent/media.ts";
import type { ChannelRegistry } from "../../channels/registry.ts";
import type { Scheduler } from "../cron/scheduler.ts";
import type { ExecApprovals } from "../exec/approvals.ts";
import type { NodeRegistry } from "./nodes.ts";

/** Options of {@link GatewayContext.broadcast}. */
export interface BroadcastOptions {
  /** Skip clients whose send buffer is over the limit instead of dropping them. */
  droppable?: boolean;
  /** Attach the current `stateVersion`. */
  stateVersion?: boolean;
  /** The event came from another gateway process on the same KV: do not relay it back. */
  fromPeer?: boolean;
}

/** Connection counts. */
export interface ConnectionCounts {
  total: number;
  operators: number;
  nodes: number;
  preauth: number;
}

/** The gateway as handlers see it. */
export interface GatewayContext {
  /** gw's version. */
  readonly version: string;
  /** The state directory. */
  readonly stateDir: string;
  /** The config file. */
  readonly config: ConfigFile;
  /** The durable store. */
  readonly store: Store;
  /** The log. */
  readonly log: Logger;
  /** Time source for periodic work. */
  readonly clock: Clock;
  /** The heartbeat scheduler. */
  readonly heartbeats: HeartbeatRunner;
  /** The agent runtime (turns, queues, aborts, compaction). */
  readonly agent: AgentRuntime;
  /** The tools the model may call. */
  readonly tools: ToolRegistry;
  /** Skills: listed in the system prompt, read with `read_skill`, installed by `skills.install`. */
  readonly skills: Skills;
  /** Where attachments' bytes are stored (channels save incoming photos and files here). */
  readonly media: MediaStore;
  /** The channels messages can be sent through. */
  readonly channels: ChannelRegistry;
  /** The job scheduler. */
  readonly cron: Scheduler;
  /** Exec policies and the approval flow. */
  readonly exec: ExecApprovals;
  /** Connected nodes and invocations to them. */
  readonly nodes: NodeRegistry;
  /** Milliseconds since start. */
  uptimeMs(): number;
  /** The health snapshot as JSON; `refresh` recomputes it first. */
  health(refresh: boolean): RawJson;
  /** The presence list, the gateway's own entry first. */
  presence(): PresenceEntry[];
  /** Add or replace a presence entry reported by a client (`system-event`). */
  upsertPresence(key: string, entry: PresenceEntry): void;
  /** Open connections by kind. */
  connectionCounts(): ConnectionCounts;
  /** Event-loop delay figures. */
  eventLoop(): EventLoopStats;
  /** Send an event to every connection allowed to see it; a RawJson payload goes as is. */
  broadcast(event: string, payload: unknown, options?: BroadcastOptions): void;
  /** Close the live sockets of a device (one role, or all): it was revoked or removed. */
  closeDevice(deviceId: string, role: string | undefined, reason: string): number;
  /** Make a config change take effect; returns the settings that need a restart. */
  applyConfig(): Promise<string[]>;
  /**
   * Stop for a restart (update.run): clients get `shutdown` with
   * `restartExpectedMs`, then `gw start` exits with the code its supervisor
   * restarts on (`RESTART_EXIT_CODE`, 75).
   */
  requestRestart(reason: string, restartExpectedMs: number): void;
}
