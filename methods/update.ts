/**
 * `update.run`: replace the running gw binary with the newest release from
 * the configured feed, then restart (lib/update/install.ts does the work).
 *
 * Off unless `update.enabled` is true with an https `update.feedUrl`. Like
 * OpenClaw's, every outcome past params validation is an ok response whose
 * payload says what happened: `ok` is true when a new binary was installed
 * (restart follows) or when gw is already up to date; otherwise `code` and
 * `message` say why nothing was replaced (`disabled`, `not-compiled`,
 * `checksum-mismatch`, ...). The method is always advertised: it is
 * configurable at run time, and answers with its reason when it cannot act.
 *
 * @module
 */
import { z } from "zod";
import { defineMethod } from "../lib/server/method.ts";
import { invalidRequest } from "../lib/protocol/errors.ts";
import { VERSION } from "../lib/version.ts";

/** At most one update at a time per process. */
let running = false;

const text = z.string().max(4096);

/** Params, as OpenClaw's `UpdateRunParamsSchema` (a closed object). */
const params = z.strictObject({
  requester: z.strictObject({
    channel: text.optional(),
    accountId: text.optional(),
    senderId: text.optional(),
  }).optional().describe("Who asked, when the request came from a chat (kept in the log)."),
  sessionKey: z.string().max(512).optional().describe("The session that asked (kept in the log)."),
  deliveryContext: z.strictObject({
    channel: text.optional(),
    to: text.optional(),
    accountId: text.optional(),
    threadId: z.union([text, z.number()]).optional(),
  }).optional().describe("Where OpenClaw would post its completion notice (gw posts none)."),
  note: text.optional().describe("A note for the log and the shutdown reason."),
  continuationMessage: text.optional().describe("Accepted for OpenClaw clients; unused."),
  restartDelayMs: z.int().min(0).max(60_000).optional().describe(
    "Wait this long after answering before the restart (default 0).",
  ),
  timeoutMs: z.int().min(1).max(3_600_000).optional().describe(
    "Deadline of the feed read and of the download, each.",
  ),
  target: z.strictObject({
    kind: z.literal("git"),
    upstreamRef: z.string().min(1).max(256),
    upstreamSha: z.string().regex(/^[a-fA-F0-9]{40}$/),
  }).optional().describe("A git target (OpenClaw source installs): refused, gw updates binaries."),
});

/** `update.run`: install the feed's newer release over this binary, then restart. */
export const updateRun = defineMethod({
  name: "update.run",
  scope: "admin",
  summary: "Install the newest gw release from update.feedUrl (sha256-checked), then restart.",
  params,
  handler: async (p, ctx, caller) => {
    if (p.target !== undefined) {
      throw invalidRequest(
        "params.target: gw updates its binary from update.feedUrl, not from git",
        { code: "UPDATE_TARGET_UNSUPPORTED" },
      );
    }
    const runId = crypto.randomUUID();
    const cfg = ctx.config.config.update;
    const refuse = (code: string, message: string) => ({
      ok: false,
      runId,
      code,
      message,
      result: {
        status: "skipped",
        mode: "binary",
        reason: code,
        before: { version: VERSION },
        steps: [],
        durationMs: 0,
      },
      restart: null,
    });
    if (!cfg.enabled || cfg.feedUrl === undefined) {
      return refuse(
        "disabled",
        "update.run is off: set update.enabled to true and update.feedUrl to your release feed " +
          "(https) in gw.json",
      );
    }
    if (running) return refuse("in-progress", "an update is already running; try again after it");
    running = true;
    try {
      const { runUpdate, isDenoRuntime } = await import("../lib/update/install.ts");
      const execPath = Deno.execPath();
      if (isDenoRuntime(execPath)) {
        return refuse(
          "not-compiled",
          `update.run works only in a compiled gw binary; this gw runs from deno run (${execPath}): ` +
            "update the source instead",
        );
      }
      ctx.log.info("update.run started", {
        runId,
        clientId: caller.clientId,
        deviceId: caller.deviceId,
        sessionKey: p.sessionKey,
        note: p.note,
      });
      const delay = p.restartDelayMs ?? 0;
      const report = await runUpdate({
        execPath,
        currentVersion: VERSION,
        target: Deno.build.target,
        feedUrl: cfg.feedUrl,
        channel: cfg.channel,
        timeoutMs: p.timeoutMs,
        restart: (ms) => {
          const reason = p.note ? `update.run: ${p.note.slice(0, 200)}` : "update.run";
          // After the answer has gone out: the shutdown waits for in-flight requests anyway.
          setTimeout(() => ctx.requestRestart(reason, delay + ms), delay);
        },
      });
      ctx.log[report.status === "error" ? "warn" : "info"]("update.run finished", {
        runId,
        status: report.status,
        reason: report.reason,
        message: report.message,
      });
      const ok = report.status !== "error";
      return {
        ok,
        runId,
        ...(ok ? {} : { code: report.reason ?? "error" }),
        message: report.message,
        result: {
          status: report.status,
          mode: "binary",
          ...(report.reason ? { reason: report.reason } : {}),
          before: { version: report.before },
          ...(report.after ? { after: { version: report.after } } : {}),
          ...(report.installed ? { installed: report.installed } : {}),
          steps: report.steps,
          durationMs: report.durationMs,
        },
        restart: report.restartRequested ? { ok: true, delayMs: delay } : null,
      };
    } finally {
      running = false;
    }
  },
});
