/**
 * The method table: every method gw implements, in the order hello-ok
 * advertises them. Nothing is listed here until it works.
 *
 * @module
 */
import type { MethodDef } from "../lib/server/method.ts";
import {
  health,
  lastHeartbeat,
  setHeartbeats,
  status,
  systemEvent,
  systemPresence,
  wake,
} from "./health.ts";
import { skillsBins, skillsInstall, skillsStatus, skillsUpdate } from "./skills.ts";
import { logsTail } from "./logs.ts";
import { configApply, configGet, configPatch, configSchemaMethod, configSet } from "./config.ts";
import { agentIdentityGet, agentsList, modelsList } from "./agents.ts";
import { agent, agentWait, chatAbort, chatHistory, chatSend } from "./chat.ts";
import { channelsLogout, channelsStatus, poll, send } from "./channels.ts";
import { CHANNEL_MODULES } from "../channels/catalog.ts";
import { wizardCancel, wizardNext, wizardStart, wizardStatus } from "./wizard.ts";
import {
  ttsConvert,
  ttsDisable,
  ttsEnable,
  ttsProviders,
  ttsSetProvider,
  ttsStatus,
} from "./tts.ts";
import { talkMode, voicewakeGet, voicewakeSet } from "./voice.ts";
import {
  nodeDescribe,
  nodeEvent,
  nodeInvoke,
  nodeInvokeResult,
  nodeList,
  nodePairApprove,
  nodePairList,
  nodePairReject,
  nodeRename,
} from "./nodes.ts";
import {
  execApprovalRequest,
  execApprovalResolve,
  execApprovalsGet,
  execApprovalsNodeGet,
  execApprovalsNodeSet,
  execApprovalsSet,
  execApprovalWaitDecision,
} from "./exec.ts";
import {
  devicePairApprove,
  devicePairList,
  devicePairReject,
  devicePairRemove,
  deviceTokenRevoke,
  deviceTokenRotate,
} from "./devices.ts";
import {
  cronAdd,
  cronGet,
  cronList,
  cronRemove,
  cronRun,
  cronRuns,
  cronStatus,
  cronUpdate,
} from "./cron.ts";
import {
  sessionsCompact,
  sessionsDelete,
  sessionsList,
  sessionsPatch,
  sessionsPreview,
  sessionsReset,
  usageCost,
  usageStatus,
} from "./sessions.ts";
import { browserRequest } from "./browser.ts";
import { updateRun } from "./update.ts";

/** Every method, advertised in this order. */
export const methods: readonly MethodDef[] = [
  health,
  status,
  systemPresence,
  lastHeartbeat,
  setHeartbeats,
  systemEvent,
  wake,
  logsTail,
  configGet,
  configSchemaMethod,
  configSet,
  configPatch,
  configApply,
  modelsList,
  agentsList,
  agentIdentityGet,
  skillsStatus,
  skillsBins,
  skillsInstall,
  skillsUpdate,
  agent,
  agentWait,
  chatSend,
  chatHistory,
  chatAbort,
  send,
  poll,
  channelsStatus,
  channelsLogout,
  sessionsList,
  sessionsPreview,
  sessionsPatch,
  sessionsReset,
  sessionsDelete,
  sessionsCompact,
  usageStatus,
  usageCost,
  cronList,
  cronGet,
  cronStatus,
  cronRuns,
  cronAdd,
  cronUpdate,
  cronRemove,
  cronRun,
  devicePairList,
  devicePairApprove,
  devicePairReject,
  devicePairRemove,
  deviceTokenRotate,
  deviceTokenRevoke,
  execApprovalsGet,
  execApprovalsSet,
  execApprovalsNodeGet,
  execApprovalsNodeSet,
  execApprovalRequest,
  execApprovalResolve,
  execApprovalWaitDecision,
  nodeList,
  nodeDescribe,
  nodeRename,
  nodeInvoke,
  nodeInvokeResult,
  nodeEvent,
  nodePairList,
  nodePairApprove,
  nodePairReject,
  wizardStart,
  wizardNext,
  wizardCancel,
  wizardStatus,
  browserRequest,
  updateRun,
  ttsStatus,
  ttsProviders,
  ttsEnable,
  ttsDisable,
  ttsSetProvider,
  ttsConvert,
  voicewakeGet,
  voicewakeSet,
  talkMode,
  ...CHANNEL_MODULES.flatMap((c) => c.methods),
] as readonly MethodDef[];
