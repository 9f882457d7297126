/**
 * `gw start`: run the gateway in the foreground until SIGINT or SIGTERM.
 *
 * @module
 */
import { GatewayStartError, RESTART_EXIT_CODE, startGateway } from "../server/gateway.ts";
import { methods } from "../../methods/mod.ts";
import { VERSION } from "../version.ts";
import { resolveStateDir, tildify } from "./paths.ts";
import { bold, dim, green, yellow } from "./style.ts";

/** Options of `gw start`, already parsed. */
export interface StartOptions {
  port?: string | undefined;
  bind?: string | undefined;
  stateDir?: string | undefined;
  token?: string | undefined;
  password?: string | undefined;
  /** A remote KV (KV Connect) instead of `<state>/gw.kv`; `GW_KV_URL` when absent. */
  kvUrl?: string | undefined;
}

/**
 * Check a `--kv-url`: an `http(s)://` URL (KV Connect), with
 * `DENO_KV_ACCESS_TOKEN` set. Returns the URL as given.
 */
export function checkKvUrl(text: string, from: string, token: string | undefined): string {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new GatewayStartError(
      `${from}: expected a KV Connect URL (https://…), got '${text.slice(0, 200)}'`,
    );
  }
  if (u.protocol !== "https:" && u.protocol !== "http:") {
    throw new GatewayStartError(
      `${from}: expected a KV Connect URL (https://…), got a ${u.protocol} URL` +
        " (a local KV is <state-dir>/gw.kv: use --state-dir)",
    );
  }
  if (u.username || u.password) {
    throw new GatewayStartError(
      `${from}: put the access token in DENO_KV_ACCESS_TOKEN, not in the URL`,
    );
  }
  if (!token) {
    throw new GatewayStartError(
      `${from} needs DENO_KV_ACCESS_TOKEN: set it to the access token of the KV at ${u.origin}`,
    );
  }
  return text;
}

function parsePort(text: string | undefined, from: string): number | undefined {
  if (text === undefined || text === "") return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    throw new GatewayStartError(`${from}: expected a port number from 0 to 65535, got '${text}'`);
  }
  return n;
}

/** Run `gw start`; resolves with the exit code. */
export async function runStart(o: StartOptions): Promise<number> {
  const env = (k: string) => Deno.env.get(k) || undefined;
  const stateDir = resolveStateDir(o.stateDir);
  let gw;
  try {
    const port = parsePort(o.port, "--port") ?? parsePort(env("GW_PORT"), "GW_PORT");
    const opts: Parameters<typeof startGateway>[0] = { stateDir, methods, version: VERSION };
    if (port !== undefined) opts.port = port;
    const bind = o.bind ?? env("GW_BIND");
    if (bind) opts.bind = bind;
    const token = o.token ?? env("GW_TOKEN");
    if (token) opts.token = token;
    const password = o.password ?? env("GW_PASSWORD");
    if (password) opts.password = password;
    const kvUrl = o.kvUrl ?? env("GW_KV_URL");
    if (kvUrl) {
      let token: string | undefined;
      try {
        token = Deno.env.get("DENO_KV_ACCESS_TOKEN") || undefined;
      } catch { /* not granted: as if unset */ }
      opts.kvUrl = checkKvUrl(kvUrl, o.kvUrl ? "--kv-url" : "GW_KV_URL", token);
    }
    gw = await startGateway(opts);
  } catch (e) {
    if (e instanceof GatewayStartError) {
      console.error(`gw: ${e.message}`);
      return 1;
    }
    throw e;
  }
  // Signal handlers first: a supervisor may signal as soon as it reads the line below.
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      console.error("gw: second signal, exiting now");
      Deno.exit(130);
    }
    stopping = true;
    console.error(`gw: ${signal}, shutting down`);
    void gw.shutdown(`received ${signal}`);
  };
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  for (const s of signals) Deno.addSignalListener(s, () => stop(s));
  if (Deno.build.os !== "windows") {
    // SIGHUP: read gw.json again (`systemctl reload gw`); an invalid file keeps the last good config.
    Deno.addSignalListener("SIGHUP", () => {
      void gw.reloadConfig("SIGHUP").then((r) => {
        console.error(
          r.error
            ? `gw: SIGHUP: gw.json is not valid, kept the running config: ${r.error}`
            : r.changed
            ? `gw: SIGHUP: config reloaded${
              r.restartRequired.length
                ? ` (restart needed for ${r.restartRequired.join(", ")})`
                : ""
            }`
            : "gw: SIGHUP: config unchanged",
        );
      });
    });
  }
  console.log(
    `${green("●")} ${bold(`gw ${VERSION}`)} listening on ${bold(gw.url)}  ${
      dim(`state ${tildify(stateDir)}`)
    }`,
  );
  if (!await Deno.stat(`${stateDir}/gw.json`).then(() => true, () => false)) {
    console.log(`No gw.json yet: run ${bold("gw setup")} to pick a model, sign-in and Telegram.`);
  }
  if (gw.generatedToken) {
    const file = tildify(`${stateDir}/token`);
    if (Deno.stdout.isTerminal()) {
      console.log(
        `${yellow("First start:")} generated an access token, stored in ${file} (mode 0600).\n` +
          `  token: ${gw.generatedToken}\n` +
          `  It is shown only now. Read it again with: cat ${file}\n` +
          `  gw call reads it from there by itself: try  gw call health`,
      );
    } else {
      // Not a terminal: this output may be kept (the systemd journal, a log
      // file), and a secret must not end up in a log.
      console.log(
        `First start: generated an access token into ${file} (mode 0600). It is not printed ` +
          `because this output is not a terminal; read it with: cat ${file}`,
      );
    }
  }
  await gw.finished;
  if (gw.restartRequested) {
    await gw.shutdown(); // all of it (store and log closed), not just the listener
    console.error(`gw: restarting: exit ${RESTART_EXIT_CODE} for the supervisor to start gw again`);
    return RESTART_EXIT_CODE;
  }
  return 0;
}
