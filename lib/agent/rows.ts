/**
 * A session as lists and events show it (`sessions.list` rows, the
 * `sessions.changed` event's `session`).
 *
 * @module
 */
import type { SessionEntry } from "../store/sessions.ts";
import { DEFAULT_MODEL, splitModelRef } from "./models.ts";
import type { SessionRow } from "../protocol/types.ts";

export type { SessionRow };

/** The row of `entry`; `defaultModel` fills in the model when the session has none. */
export function sessionRow(
  entry: SessionEntry,
  hasActiveRun: boolean,
  defaultModel: string = DEFAULT_MODEL,
): SessionRow {
  const ref = splitModelRef(entry.model ?? defaultModel);
  const row: SessionRow = {
    key: entry.key,
    sessionId: entry.sessionId,
    agentId: entry.agentId,
    kind: entry.chatType,
    chatType: entry.chatType,
    displayName: entry.label ?? entry.derivedTitle ?? entry.key,
    createdAt: entry.createdAt,
    updatedAt: entry.updatedAt,
    model: ref.model,
    modelProvider: ref.providerId,
    inputTokens: entry.inputTokens,
    outputTokens: entry.outputTokens,
    totalTokens: entry.totalTokens,
    costUsd: entry.costUsd,
    messageCount: entry.nextSeq,
    compactionCount: entry.compactionCount,
    archived: entry.archivedAt !== undefined,
    pinned: entry.pinnedAt !== undefined,
    abortedLastRun: entry.abortedLastRun === true,
    hasActiveRun,
  };
  if (entry.label !== undefined) row.label = entry.label;
  if (entry.derivedTitle !== undefined) row.derivedTitle = entry.derivedTitle;
  if (entry.lastMessagePreview !== undefined) row.lastMessagePreview = entry.lastMessagePreview;
  if (entry.thinkingLevel !== undefined) row.thinkingLevel = entry.thinkingLevel;
  if (entry.verboseLevel !== undefined) row.verboseLevel = entry.verboseLevel;
  if (entry.responseUsage !== undefined) row.responseUsage = entry.responseUsage;
  if (entry.status !== undefined) row.status = entry.status;
  if (entry.archivedAt !== undefined) row.archivedAt = entry.archivedAt;
  return row;
}
