/**
 * The gw command: the gateway, and a client of it, in one program.
 *
 *   gw start [--port P] [--bind ADDR] [--state-dir DIR] [--token T | --password P] [--kv-url URL]
 *   gw setup [channels] [--state-dir DIR]            the onboarding wizard, step by step
 *   gw call <method> [params-json] [--url URL] [--token T] [--password P] [--json] [--timeout MS]
 *   gw health | gw status     summaries of the same calls
 *   gw chat [--session KEY] [--thinking L]           a REPL on a session
 *   gw agent "message" [--session KEY] [--model M] [--json]   one turn
 *   gw sessions [list|show KEY|reset KEY|delete KEY] [--json]
 *   gw cron [list|add|edit|rm|run|runs|status] ...    scheduled jobs
 *   gw devices [list|approve|reject|remove|rotate|revoke] ...   paired devices
 *   gw pair <url> [--token T | --password P]         pair this machine with a gateway
 *   gw approvals [--once] | gw approvals policy [get|set|allow|remove] ...   exec approvals
 *   gw node --url URL [--token T] [--name N]         run this machine as a node of a gateway
 *   gw nodes [list|describe|invoke|approve|reject] ...   the gateway's nodes
 *   gw service install|uninstall|status|logs [--user|--system] [--dry-run] ...   gw as a service
 *   gw doctor [--state-dir DIR] [--url URL] [--token T] [--json]   check the setup
 *   gw version | gw help
 *
 * Exit codes: 0 ok, 1 error response, 2 usage, 3 cannot connect.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { VERSION } from "./lib/version.ts";
import { bold, dim, red } from "./lib/cli/style.ts";

const USAGE = `${bold("gw")} ${VERSION}: a small, secure gateway for the OpenClaw protocol

Usage:
  gw start   [--port P] [--bind ADDR] [--state-dir DIR] [--token T | --password P]
             [--kv-url URL]   the KV on a KV Connect server instead of <state-dir>/gw.kv
  gw setup   [channels] [--state-dir DIR]   first setup, one question at a time: gateway access,
             a model (its key checked with one tiny call), a Telegram bot (checked), spoken
             replies, a review; saves nothing before your yes. Through the running gateway
             (applied at once), else into gw.json. 'channels': only the Telegram part
  gw call    <method> [params-json] [--url URL] [--token T] [--password P] [--json] [--timeout MS]
  gw health  [--url URL] [--token T] [--json]
  gw status  [--url URL] [--token T] [--json]
  gw chat    [--session KEY] [--thinking LEVEL]
             a REPL on a session (default main): /new /history /quit; Ctrl-C aborts a
             reply, Ctrl-D quits; off a terminal, each stdin line is one turn
  gw agent   "message" [--session KEY] [--thinking LEVEL] [--model M] [--json] [--timeout MS]
             one turn; prints the reply
  gw sessions [list] [--search Q] [--limit N] [--json]
  gw sessions show KEY [--limit N] [--json]
  gw sessions reset KEY | delete KEY [--keep-transcript]
  gw cron    [list] [--all] [--json]          scheduled jobs (--all: the disabled ones too)
  gw cron add NAME (--every DUR [--anchor ISO] | --at 20m|ISO | --cron "EXPR" [--tz ZONE]
             [--stagger DUR]) (--message TEXT | --system-event TEXT)
             [--session main|isolated|session:KEY] [--wake now|next-heartbeat] [--model M]
             [--thinking LEVEL] [--timeout SECONDS] [--announce [--channel C] [--to ID]]
             [--disabled] [--keep-after-run] [--description D] [--json]
  gw cron edit ID [any flag of cron add] [--name N] [--enable | --disable]
  gw cron rm ID | run ID [--due] | status
  gw cron runs [ID] [--status ok|error|skipped|running] [--limit N] [--json]
             an ID may be any unique prefix of a job's id; times without a zone are UTC
  gw devices [list] [--json]                 pairing requests and paired devices
  gw devices approve REQUEST | reject REQUEST
  gw devices remove DEVICE
  gw devices rotate DEVICE [--role operator] [--scopes read,write]   prints the new token once
  gw devices revoke DEVICE [--role operator]
             REQUEST and DEVICE may be any unique prefix of the id
  gw pair    <url> [--token T | --password P] [--name NAME] [--scopes a,b] [--timeout 5m]
             pair this machine with a remote gateway: waits for 'gw devices approve' on
             the gateway's machine, then keeps a device token, so later client commands
             with --url <url> need no --token
  gw approvals [--once]      answer exec approval requests as they come: a card per request,
             then y (allow once), a (always), h (always for 1h), n (deny), s (skip);
             --once exits after one answer; off a terminal, each stdin line is one answer.
             Requests made before it started are not shown (no list of pending requests)
  gw approvals policy [get] [--json]          the exec policy: defaults, agents, allowlist
  gw approvals policy set [--security deny|allowlist|full] [--ask off|on-miss|always]
             [--ask-fallback deny|allowlist|full] [--agent ID]   (inherit: drop an agent's own)
  gw approvals policy allow <pattern> [--args GLOB] [--agent ID] [--ttl 1h]
             pattern globs the resolved binary (/usr/bin/git, **/git); default agent * (all)
  gw approvals policy remove <entryId|prefix>
  gw node    --url ws://HOST:18789 [--token T | --password P] [--name N] [--state-dir D]
             run this machine as a node of that gateway until Ctrl-C: it serves system.run
             (each command approved on the gateway), system.which and system.info; the
             first time it waits for 'gw nodes approve' on the gateway (on loopback with
             the shared secret it is paired at once), then keeps a device token
  gw nodes   [list] [--json]                  connected nodes and pending node requests
  gw nodes describe NODE
  gw nodes invoke NODE COMMAND [params-json] [--json]   e.g. system.which '{"name":"git"}',
             system.run '{"argv":["uname","-a"],"cwd":"/tmp"}' (asks for approval)
  gw nodes approve REQUEST | reject REQUEST
             NODE and REQUEST may be any unique prefix of the id
  gw channels [status] [--probe] [--json]   chat channels: bot, state, mode, DM policy, errors
  gw channels add telegram --token BOT_TOKEN [--api-root URL] [--allow-from ID,ID]
             [--dm-policy pairing|allowlist|open|disabled] [--json]   checks the token with
             Telegram, then saves it: through the running gateway (the bot starts at once),
             else into gw.json. Here --token is the bot's token from @BotFather; the
             gateway's own secret comes from GW_TOKEN or the state dir
  gw channels logout telegram               remove the bot token from the config; the bot stops
  gw pairing [list] [CHANNEL] [--json]      senders who got a pairing code, and those approved
  gw pairing approve CHANNEL CODE | reject CHANNEL CODE
             e.g. gw pairing approve telegram ABCD2345 (the code the sender was given)
  gw service install [--user|--system] [--dry-run [--output FILE]] [--state-dir DIR] [--port P]
             [--memory-max 512M] [--user-name NAME] [--launchd]   run gw start as a sandboxed
             systemd unit (--user: ~/.config/systemd/user/gw.service, the default; --system:
             /etc/systemd/system/gw.service as root, a dynamic user, state in /var/lib/gw or
             --user-name's account), enabled and started; on macOS a launchd agent.
             --dry-run prints the unit (--launchd: the plist) and installs nothing
  gw service uninstall | status | logs [-f]   [--user|--system]
  gw doctor  [--state-dir DIR] [--url URL] [--token T] [--json]   check the setup: config, file
             modes, port, KV, model key, Telegram token, clock, the gateway; exit 1 on a failure
  gw version
  gw help    [--json]        list the gateway's methods

Client commands also take --url URL, --token T | --password P and --state-dir DIR.
Thinking levels: off, minimal, low, medium, high, xhigh.
Durations: 30s, 20m, 1h, 1h30m, 1d.
Environment: GW_PORT, GW_BIND, GW_STATE_DIR, GW_TOKEN, GW_PASSWORD, GW_KV_URL (with
  DENO_KV_ACCESS_TOKEN: a remote KV for several gateways, docs/scaling.md).
State (config gw.json, token, gw.kv, logs/, identity/) lives in ~/.gw unless --state-dir says otherwise.
Exit codes: 0 ok, 1 error response, 2 usage, 3 cannot connect.`;

const OPTIONS = {
  port: { type: "string" },
  bind: { type: "string" },
  "state-dir": { type: "string" },
  "kv-url": { type: "string" },
  token: { type: "string" },
  password: { type: "string" },
  url: { type: "string" },
  json: { type: "boolean" },
  timeout: { type: "string" },
  session: { type: "string" },
  thinking: { type: "string" },
  model: { type: "string" },
  search: { type: "string" },
  limit: { type: "string" },
  "keep-transcript": { type: "boolean" },
  all: { type: "boolean" },
  every: { type: "string" },
  anchor: { type: "string" },
  at: { type: "string" },
  cron: { type: "string" },
  tz: { type: "string" },
  stagger: { type: "string" },
  message: { type: "string" },
  "system-event": { type: "string" },
  wake: { type: "string" },
  announce: { type: "boolean" },
  channel: { type: "string" },
  to: { type: "string" },
  disabled: { type: "boolean" },
  enable: { type: "boolean" },
  disable: { type: "boolean" },
  "keep-after-run": { type: "boolean" },
  description: { type: "string" },
  name: { type: "string" },
  due: { type: "boolean" },
  status: { type: "string" },
  role: { type: "string" },
  scopes: { type: "string" },
  once: { type: "boolean" },
  security: { type: "string" },
  ask: { type: "string" },
  "ask-fallback": { type: "string" },
  agent: { type: "string" },
  args: { type: "string" },
  ttl: { type: "string" },
  probe: { type: "boolean" },
  "api-root": { type: "string" },
  "dm-policy": { type: "string" },
  "allow-from": { type: "string" },
  user: { type: "boolean" },
  system: { type: "boolean" },
  "dry-run": { type: "boolean" },
  output: { type: "string" },
  "memory-max": { type: "string" },
  "user-name": { type: "string" },
  launchd: { type: "boolean" },
  follow: { type: "boolean", short: "f" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "V" },
} as const;

/** Connection flags every client command takes. */
const CLIENT_FLAGS = ["url", "token", "password", "state-dir", "timeout"];

/** The flags each newer command accepts; a flag meant for another command is a usage error. */
const COMMAND_FLAGS: Record<string, string[]> = {
  chat: [...CLIENT_FLAGS, "session", "thinking"],
  agent: [...CLIENT_FLAGS, "session", "thinking", "model", "json"],
  sessions: [...CLIENT_FLAGS, "json", "search", "limit", "keep-transcript"],
  cron: [
    ...CLIENT_FLAGS,
    ...["json", "all", "every", "anchor", "at", "cron", "tz", "stagger", "message"],
    ...["system-event", "session", "wake", "model", "thinking", "announce", "channel", "to"],
    ...["disabled", "enable", "disable", "keep-after-run", "description", "name", "due"],
    ...["status", "limit"],
  ],
  devices: [...CLIENT_FLAGS, "json", "role", "scopes"],
  pair: [...CLIENT_FLAGS, "json", "name", "scopes", "role"],
  approvals: [...CLIENT_FLAGS, "json", "once", "security", "ask", "ask-fallback", "agent", "args"]
    .concat("ttl"),
  node: ["url", "token", "password", "state-dir", "name"],
  nodes: [...CLIENT_FLAGS, "json"],
  channels: [...CLIENT_FLAGS, "json", "probe", "api-root", "dm-policy", "allow-from"],
  pairing: [...CLIENT_FLAGS, "json"],
  setup: CLIENT_FLAGS,
  service: [
    ...["user", "system", "dry-run", "output", "state-dir", "port", "memory-max", "user-name"],
    ...["launchd", "follow"],
  ],
  doctor: [...CLIENT_FLAGS, "json"],
  start: ["port", "bind", "state-dir", "token", "password", "kv-url"],
};

/** The first flag given that `command` does not take, or null. */
function strayFlag(command: string, values: Record<string, unknown>): string | null {
  const allowed = COMMAND_FLAGS[command];
  if (!allowed) {
    const own = new Set(Object.values(COMMAND_FLAGS).flat());
    for (const f of CLIENT_FLAGS.concat("json")) own.delete(f);
    const stray = Object.keys(values).find((k) => own.has(k));
    return stray ?? null;
  }
  return Object.keys(values).find((k) => k !== "help" && !allowed.includes(k)) ?? null;
}

function usage(message: string): number {
  console.error(`${red("gw:")} ${message}\n${dim("run 'gw help' for usage")}`);
  return 2;
}

async function help(json: boolean): Promise<number> {
  const { methods } = await import("./methods/mod.ts");
  if (json) {
    console.log(
      JSON.stringify(
        methods.map((m) => ({ name: m.name, scope: m.scope, summary: m.summary })),
        null,
        2,
      ),
    );
    return 0;
  }
  console.log(USAGE);
  console.log(`\n${bold("Methods")} (gw call <method> [params-json]):`);
  const width = Math.max(...methods.map((m) => m.name.length));
  for (const m of methods) {
    console.log(`  ${m.name.padEnd(width)}  ${dim(m.scope.padEnd(6))}  ${m.summary}`);
  }
  return 0;
}

/** Run a client command; its usage errors exit 2. */
async function clientCommand(run: () => Promise<number>): Promise<number> {
  const { UsageError } = await import("./lib/cli/call.ts");
  try {
    return await run();
  } catch (e) {
    if (e instanceof UsageError) return usage(e.message);
    throw e;
  }
}

/** Run the CLI with `args`; resolves with the exit code. */
export async function main(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (e) {
    return usage((e as Error).message);
  }
  const { values: v, positionals } = parsed;
  const [first, ...rest] = positionals;
  const command = v.version && first === undefined ? "version" : first;
  if (v.help && command !== "call") return help(false);
  const stray = command === undefined ? null : strayFlag(command, v);
  if (stray) return usage(`${command} does not take --${stray}`);
  const callOpts = {
    url: v.url,
    token: v.token,
    password: v.password,
    stateDir: v["state-dir"],
    json: v.json,
    timeout: v.timeout,
  };
  switch (command) {
    case undefined:
    case "help":
      return help(v.json === true);
    case "version":
      console.log(
        v.json
          ? JSON.stringify({ version: VERSION, deno: Deno.version.deno })
          : `gw ${VERSION} (deno ${Deno.version.deno})`,
      );
      return 0;
    case "start": {
      if (rest.length) return usage(`start takes no arguments, got '${rest.join(" ")}'`);
      if (v.token && v.password) return usage("pass --token or --password, not both");
      const { runStart } = await import("./lib/cli/start.ts");
      return runStart({
        port: v.port,
        bind: v.bind,
        stateDir: v["state-dir"],
        token: v.token,
        password: v.password,
        kvUrl: v["kv-url"],
      });
    }
    case "setup": {
      const [flow, ...extra] = rest;
      if (extra.length || (flow !== undefined && flow !== "channels")) {
        return usage(`usage: gw setup [channels], got '${rest.join(" ")}'`);
      }
      const { runSetup } = await import("./lib/cli/setup.ts");
      return await clientCommand(() =>
        runSetup({ ...callOpts, flow: flow === "channels" ? "channels" : "setup" })
      );
    }
    case "call": {
      const [method, paramsText, ...extra] = rest;
      if (!method || v.help) return usage("usage: gw call <method> [params-json]");
      if (extra.length) return usage(`unexpected argument '${extra[0]}' (quote the params JSON)`);
      let params: unknown = undefined;
      if (paramsText !== undefined) {
        try {
          params = JSON.parse(paramsText);
        } catch (e) {
          return usage(`params must be JSON, e.g. '{"limit":5}': ${(e as Error).message}`);
        }
      }
      const { callOnce, printPretty, UsageError } = await import("./lib/cli/call.ts");
      try {
        return await callOnce(method, params, callOpts, printPretty);
      } catch (e) {
        if (e instanceof UsageError) return usage(e.message);
        throw e;
      }
    }
    case "health":
    case "status": {
      if (rest.length) return usage(`${command} takes no arguments`);
      const { callOnce, printHealth, printStatus, UsageError } = await import("./lib/cli/call.ts");
      try {
        return await callOnce(
          command,
          {},
          callOpts,
          command === "health" ? printHealth : printStatus,
        );
      } catch (e) {
        if (e instanceof UsageError) return usage(e.message);
        throw e;
      }
    }
    case "chat": {
      if (rest.length) {
        return usage(
          `chat takes no arguments, got '${rest.join(" ")}' (type messages at the prompt)`,
        );
      }
      const { runChat } = await import("./lib/cli/chat.ts");
      return await clientCommand(() =>
        runChat({ ...callOpts, session: v.session, thinking: v.thinking })
      );
    }
    case "agent": {
      const message = rest.join(" ");
      if (!message.trim()) return usage('usage: gw agent "message"');
      const { runAgent } = await import("./lib/cli/chat.ts");
      return await clientCommand(() =>
        runAgent(message, {
          ...callOpts,
          session: v.session,
          thinking: v.thinking,
          model: v.model,
        })
      );
    }
    case "sessions": {
      const { runSessions } = await import("./lib/cli/sessions.ts");
      return await clientCommand(() =>
        runSessions(rest, {
          ...callOpts,
          search: v.search,
          limit: v.limit,
          keepTranscript: v["keep-transcript"],
        })
      );
    }
    case "cron": {
      const { runCron } = await import("./lib/cli/cron.ts");
      return await clientCommand(() => runCron(rest, { ...callOpts, flags: v }));
    }
    case "devices": {
      const { runDevices } = await import("./lib/cli/devices.ts");
      return await clientCommand(() => runDevices(rest, { ...callOpts, flags: v }));
    }
    case "pair": {
      const { runPair } = await import("./lib/cli/devices.ts");
      return await clientCommand(() => runPair(rest, { ...callOpts, flags: v }));
    }
    case "approvals": {
      const { runApprovals } = await import("./lib/cli/approvals.ts");
      return await clientCommand(() => runApprovals(rest, { ...callOpts, flags: v }));
    }
    case "node": {
      const { runNode } = await import("./lib/cli/nodes.ts");
      return await clientCommand(() => runNode(rest, { ...callOpts, flags: v }));
    }
    case "nodes": {
      const { runNodes } = await import("./lib/cli/nodes.ts");
      return await clientCommand(() => runNodes(rest, { ...callOpts, flags: v }));
    }
    case "channels": {
      const { runChannels } = await import("./lib/cli/channels.ts");
      return await clientCommand(() => runChannels(rest, { ...callOpts, flags: v }));
    }
    case "pairing": {
      const { runPairing } = await import("./lib/cli/channels.ts");
      return await clientCommand(() => runPairing(rest, { ...callOpts, flags: v }));
    }
    case "service": {
      const { runService } = await import("./lib/cli/service.ts");
      return await clientCommand(() => runService(rest, { stateDir: v["state-dir"], flags: v }));
    }
    case "doctor": {
      if (rest.length) return usage(`doctor takes no arguments, got '${rest.join(" ")}'`);
      const { runDoctor } = await import("./lib/cli/doctor.ts");
      return await clientCommand(() => runDoctor(callOpts));
    }
    default:
      return usage(`unknown command '${command}'`);
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
