/**
 * Every Deno KV key gw writes, in one place. All keys start with
 * `["gw", SCHEMA_VERSION]` so a later layout can migrate side by side.
 *
 * @module
 */

/** The layout version in every key's prefix. */
export const SCHEMA_VERSION = 1;

const P = ["gw", SCHEMA_VERSION] as const;

/** Key builders. */
export const keys = {
  /** `{schemaVersion, createdAt, gwVersion}` written once. */
  meta: (): Deno.KvKey => ["gw", "meta"],
  /** Whether heartbeats run (set-heartbeats); absent means the config decides. */
  heartbeatsEnabled: (): Deno.KvKey => [...P, "heartbeat", "enabled"],
  /** The last heartbeat record of any agent. */
  lastHeartbeat: (): Deno.KvKey => [...P, "heartbeat", "last"],
  /** Queued system events of a session, ordered by id. */
  systemEvents: (sessionKey: string): Deno.KvKey => [...P, "sysevent", sessionKey],
  /** One queued system event. */
  systemEvent: (sessionKey: string, id: string): Deno.KvKey => [...P, "sysevent", sessionKey, id],
  /** A session entry, by session key. */
  session: (key: string): Deno.KvKey => [...P, "session", key],
  /** Every session entry. */
  sessions: (): Deno.KvKey => [...P, "session"],
  /** A transcript: messages of one sessionId, by seq (a number). */
  transcript: (sessionId: string): Deno.KvKey => [...P, "msg", sessionId],
  /** One transcript message (its JSON, or a chunk count when it was split). */
  message: (sessionId: string, seq: number): Deno.KvKey => [...P, "msg", sessionId, seq],
  /** Chunk `i` of a split message. */
  messagePart: (sessionId: string, seq: number, i: number): Deno.KvKey => [
    ...P,
    "msgpart",
    sessionId,
    seq,
    i,
  ],
  /** Every chunk of a sessionId's split messages. */
  messageParts: (sessionId: string): Deno.KvKey => [...P, "msgpart", sessionId],
  /** Inputs accepted but not yet started, by session key then id. */
  pendingInputs: (sessionKey: string): Deno.KvKey => [...P, "pending", sessionKey],
  /** One pending input. */
  pendingInput: (sessionKey: string, id: string): Deno.KvKey => [...P, "pending", sessionKey, id],
  /** Every pending input. */
  allPendingInputs: (): Deno.KvKey => [...P, "pending"],
  /** A run in progress (deleted when it ends; found at start = interrupted). */
  run: (runId: string): Deno.KvKey => [...P, "run", runId],
  /** Every run marker. */
  runs: (): Deno.KvKey => [...P, "run"],
  /** Token usage of one UTC day, agent and provider/model. */
  usage: (day: string, agentId: string, model: string): Deno.KvKey => [
    ...P,
    "usage",
    day,
    agentId,
    model,
  ],
  /** Every usage row. */
  usageAll: (): Deno.KvKey => [...P, "usage"],
  /** A cron job. */
  cronJob: (id: string): Deno.KvKey => [...P, "cron", "job", id],
  /** Every cron job. */
  cronJobs: (): Deno.KvKey => [...P, "cron", "job"],
  /** The due index: enabled jobs by next run time (value: the job id). */
  cronDue: (atMs: number, id: string): Deno.KvKey => [...P, "cron", "due", atMs, id],
  /** The whole due index. */
  cronDueAll: (): Deno.KvKey => [...P, "cron", "due"],
  /** Jobs with a run claimed (value: the job id), so start-up finds stale claims without a scan. */
  cronRunning: (id: string): Deno.KvKey => [...P, "cron", "running", id],
  /** Every claimed job. */
  cronRunningAll: (): Deno.KvKey => [...P, "cron", "running"],
  /** A run record of a job, by sortable id. */
  cronRun: (jobId: string, id: string): Deno.KvKey => [...P, "cron", "run", jobId, id],
  /** A job's run records. */
  cronRuns: (jobId: string): Deno.KvKey => [...P, "cron", "run", jobId],
  /** Every run record. */
  cronRunsAll: (): Deno.KvKey => [...P, "cron", "run"],
  /** A paired device, by device id. */
  device: (id: string): Deno.KvKey => [...P, "device", id],
  /** Every paired device. */
  devices: (): Deno.KvKey => [...P, "device"],
  /** A pending pairing request, by request id (expires after 5 minutes). */
  pairRequest: (id: string): Deno.KvKey => [...P, "pairreq", id],
  /** Every pending pairing request. */
  pairRequests: (): Deno.KvKey => [...P, "pairreq"],
  /** The exec policy of an execution host (`gateway` or `node:<id>`). */
  execPolicy: (host: string): Deno.KvKey => [...P, "exec", "policy", host],
  /** An idempotency record (`kind` is chat, agent, send, ...). */
  idempotency: (kind: string, key: string): Deno.KvKey => [...P, "idem", kind, key],
  /** A channel account's state value (`offset`, ...). */
  channelState: (channel: string, account: string, name: string): Deno.KvKey => [
    ...P,
    "chan",
    channel,
    "state",
    account,
    name,
  ],
  /** An inbound update already taken (expires after a week). */
  channelSeen: (channel: string, account: string, id: string): Deno.KvKey => [
    ...P,
    "chan",
    channel,
    "seen",
    account,
    id,
  ],
  /** A sender approved to talk to the agent through a channel. */
  channelAllow: (channel: string, senderId: string): Deno.KvKey => [
    ...P,
    "chan",
    channel,
    "allow",
    senderId,
  ],
  /** Every approved sender of a channel. */
  channelAllows: (channel: string): Deno.KvKey => [...P, "chan", channel, "allow"],
  /** A pending pairing request of a channel, by code. */
  channelPair: (channel: string, code: string): Deno.KvKey => [...P, "chan", channel, "pair", code],
  /** Every pending pairing request of a channel. */
  channelPairs: (channel: string): Deno.KvKey => [...P, "chan", channel, "pair"],
  /** A gateway process sharing this KV: its presence heartbeat (expires). */
  clusterProc: (procId: string): Deno.KvKey => [...P, "proc", procId],
  /** Every gateway process sharing this KV. */
  clusterProcs: (): Deno.KvKey => [...P, "proc"],
  /** One event a process relays to the others: its stream by seq, split in parts (expires). */
  clusterEvent: (procId: string, seq: number, part: number): Deno.KvKey => [
    ...P,
    "evt",
    procId,
    seq,
    part,
  ],
  /** A process's relayed events (its stream). */
  clusterEvents: (procId: string): Deno.KvKey => [...P, "evt", procId],
  /** Bumped with every relayed batch: what the other processes watch or poll. */
  clusterHead: (): Deno.KvKey => [...P, "evthead"],
  /** The pending code of a sender. */
  channelPairBySender: (channel: string, senderId: string): Deno.KvKey => [
    ...P,
    "chan",
    channel,
    "pairby",
    senderId,
  ],
} as const;
