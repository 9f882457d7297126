/**
 * A small gw client, written against the client library only (`../mod.ts`,
 * which is `jsr:@gw/gw` for everyone else): it connects with a token, asks
 * `health`, sends one message with `chat.send` and prints the reply as it
 * streams in (`chat` events) until the run ends.
 *
 * ```sh
 * GW_TOKEN="$(cat ~/.gw/token)" deno run --allow-net=127.0.0.1 \
 *   --allow-env=GW_URL,GW_TOKEN,GW_SESSION examples/chat.ts "Hello there"
 * ```
 *
 * Options (each also an environment variable):
 * - `--url <ws-url>` (`GW_URL`): the gateway. Default `ws://127.0.0.1:18789`.
 * - `--token <token>` (`GW_TOKEN`): the gateway's token. Prefer the variable:
 *   arguments show up in process lists.
 * - `--session <key>` (`GW_SESSION`): the session to talk in. Default `main`.
 *
 * The other arguments are the message. Exit codes: 0 the reply came, 1 the
 * gateway refused or the run failed, 2 usage, 3 cannot connect.
 *
 * It uses only what Deno, Node 22+ and Bun all have (`process`, `crypto`,
 * `WebSocket`), so a bundle of it runs under each of them.
 *
 * @module
 */
import {
  type ChatEvent,
  type ChatMessage,
  GatewayClient,
  GatewayConnectError,
  GatewayRequestError,
} from "../mod.ts";

/** What the command line and the environment asked for. */
interface Options {
  url: string;
  token: string;
  session: string;
  message: string;
}

/** Options from `argv` (flags win) and the environment; a string is a usage error. */
function parseOptions(argv: string[], env: Record<string, string | undefined>): Options | string {
  const flags: Record<string, string | undefined> = {
    url: env.GW_URL,
    token: env.GW_TOKEN,
    session: env.GW_SESSION,
  };
  const words: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const flag = /^--(url|token|session)(?:=(.*))?$/.exec(arg);
    if (!flag) {
      words.push(arg);
      continue;
    }
    const value = flag[2] ?? argv[++i];
    if (value === undefined) return `--${flag[1]}: expected a value, got nothing`;
    flags[flag[1]!] = value;
  }
  if (!flags.token) return "no token: set GW_TOKEN (or pass --token)";
  const message = words.join(" ").trim();
  if (!message) return "no message: pass it as arguments";
  return {
    url: flags.url || "ws://127.0.0.1:18789",
    token: flags.token,
    session: flags.session || "main",
    message,
  };
}

/** The text of a transcript message. */
function textOf(message: ChatMessage | undefined): string {
  if (!message) return "";
  if (typeof message.content === "string") return message.content;
  return message.content.map((b) => (b.type === "text" ? String(b.text ?? "") : "")).join("");
}

/** Sends `message` and prints the reply as it streams; resolves with the run's last event. */
async function chat(client: GatewayClient, opts: Options): Promise<ChatEvent> {
  // Listen before sending: the first delta may arrive before the response to chat.send.
  const seen: ChatEvent[] = [];
  let wake = (): void => {};
  const off = client.on("chat", (payload) => {
    seen.push(payload as ChatEvent);
    wake();
  });
  const closed = new Promise<never>((_, reject) => {
    client.onState((state, error) => {
      if (state === "closed" || state === "reconnecting") {
        reject(error ?? new GatewayConnectError("The connection closed during the run"));
      }
    });
  });
  closed.catch(() => {});
  try {
    const ack = await client.request("chat.send", {
      sessionKey: opts.session,
      message: opts.message,
      idempotencyKey: crypto.randomUUID(),
    });
    if (ack.status !== "started" && ack.status !== "in_flight") {
      throw new Error(`chat.send: expected a started run, got status ${ack.status}`);
    }
    let printed = "";
    let deltas = 0;
    for (let i = 0;; i++) {
      while (i >= seen.length) {
        await Promise.race([new Promise<void>((resolve) => (wake = resolve)), closed]);
      }
      const e = seen[i]!;
      if (e.runId !== ack.runId) continue;
      if (e.state === "delta") {
        deltas++;
        const piece = e.deltaText ?? textOf(e.message).slice(printed.length);
        if (e.replace) {
          process.stdout.write(`\n${piece}`);
          printed = piece;
        } else {
          process.stdout.write(piece);
          printed += piece;
        }
        continue;
      }
      if (e.state === "final") {
        const text = textOf(e.message);
        process.stdout.write(text.startsWith(printed) ? text.slice(printed.length) : `\n${text}`);
        const usage = e.usage as { input?: number; output?: number } | undefined;
        const tokens = usage ? `, ${usage.input ?? 0} tokens in, ${usage.output ?? 0} out` : "";
        console.log(`\n[final] ${deltas} deltas, stop: ${e.stopReason ?? "?"}${tokens}`);
      } else {
        if (printed) process.stdout.write("\n");
        console.error(`[${e.state}] ${e.errorMessage ?? "the run ended without a reply"}`);
      }
      return e;
    }
  } finally {
    off();
  }
}

/** Runs the example; resolves with the exit code. */
async function main(argv: string[], env: Record<string, string | undefined>): Promise<number> {
  const opts = parseOptions(argv, env);
  if (typeof opts === "string") {
    console.error(`${opts}\nusage: chat.ts [--url ws://host:port] [--session key] <message>`);
    return 2;
  }
  const client = new GatewayClient({
    url: opts.url,
    token: opts.token,
    client: { displayName: "gw example chat" },
  });
  try {
    const hello = await client.connect();
    console.log(`connected: gw ${hello.server.version}, protocol ${hello.protocol}`);
    const health = await client.request("health");
    console.log(
      `health: ${health.ok ? "ok" : "NOT ok"}, default agent ${health.defaultAgentId}, ` +
        `${health.sessions.count} sessions`,
    );
    const end = await chat(client, opts);
    return end.state === "final" ? 0 : 1;
  } catch (e) {
    if (e instanceof GatewayRequestError) {
      const detail = typeof e.details?.code === "string" ? ` [${e.details.code}]` : "";
      console.error(`${e.message}${detail}`);
      return 1;
    }
    if (e instanceof GatewayConnectError) {
      console.error(`cannot reach ${opts.url}: ${e.message}`);
      return 3;
    }
    console.error(e instanceof Error ? e.message : String(e));
    return 1;
  } finally {
    await client.close();
  }
}

process.exitCode = await main(process.argv.slice(2), process.env);
