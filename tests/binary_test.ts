/**
 * The binary is the whole product. Every command runs here from the entry the
 * binary is built from (main.ts) with the binary's flags (deno.json's `gw`
 * permission set, the one definition compile.sh uses too). Where a base
 * runtime is available (`DENORT_BIN`), compile.sh builds the real binary and
 * the same commands run from it; without one, compile.sh must say clearly
 * what is missing.
 */
import assert from "node:assert/strict";
import { gwRunArgs, startTestGateway } from "./_helpers.ts";
import { childEnv, json, okRun, type RunResult, show } from "./_cli.ts";
import { VERSION } from "../lib/version.ts";

const ROOT = new URL("../", import.meta.url).pathname;

async function run(
  cmd: string,
  args: string[],
  env: Record<string, string>,
): Promise<RunResult> {
  const out = await new Deno.Command(cmd, {
    args,
    cwd: ROOT,
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Run the product's commands through `gw` (a function that runs one command). */
async function productCommands(
  gw: (args: string[], env: Record<string, string>) => Promise<RunResult>,
): Promise<void> {
  const home = await Deno.makeTempDir({ prefix: "gw-bin-home-" });
  try {
    const env = await childEnv(home);
    const v = json(okRun(await gw(["version", "--json"], env), "gw version --json"));
    assert.equal(v.version, VERSION);
    const help = okRun(await gw(["help"], env), "gw help");
    for (const cmd of ["start", "call", "node", "setup", "service", "doctor", "version"]) {
      assert.match(help.stdout + help.stderr, new RegExp(`gw ${cmd}\\b`), `help lists gw ${cmd}`);
    }
    await using t = await startTestGateway();
    const h = json(
      okRun(
        await gw(["call", "health", "--url", t.url, "--token", t.token, "--json"], env),
        "gw call health",
      ),
    );
    assert.equal(h.ok, true);
  } finally {
    await Deno.remove(home, { recursive: true }).catch(() => {});
  }
}

Deno.test("binary: the CLI from the binary's entry and flags: version, help, call", async () => {
  await productCommands((args, env) => run(Deno.execPath(), gwRunArgs(...args), env));
});

Deno.test("compile.sh: a DENORT_BIN that is not there is a clear usage error, not a download", async () => {
  const home = await Deno.makeTempDir({ prefix: "gw-bin-home-" });
  try {
    const r = await run("bash", ["compile.sh", "--output-dir", `${home}/dist`], {
      ...(await childEnv(home)),
      DENORT_BIN: `${home}/no-such-denort`,
    });
    assert.notEqual(r.code, 0, show(r));
    assert.match(r.stderr, /DENORT_BIN=.*no-such-denort does not exist/, show(r));
    assert.equal(await Deno.stat(`${home}/dist`).then(() => true, () => false), false);
  } finally {
    await Deno.remove(home, { recursive: true }).catch(() => {});
  }
});

const denort = Deno.env.get("DENORT_BIN");

Deno.test({
  name: "binary: compile.sh builds gw with DENORT_BIN, and the binary is the CLI",
  ignore: !denort,
  fn: async () => {
    const out = await Deno.makeTempDir({ prefix: "gw-dist-" });
    try {
      const home = await Deno.makeTempDir({ prefix: "gw-bin-home-" });
      const r = await run("bash", ["compile.sh", "--output-dir", out], {
        ...(await childEnv(home)),
        DENORT_BIN: denort!,
      });
      okRun(r, "compile.sh");
      const bins = [...Deno.readDirSync(out)].map((e) => e.name).filter((n) => n.startsWith("gw-"));
      assert.equal(bins.length, 1, bins.join(","));
      const sums = await Deno.readTextFile(`${out}/SHA256SUMS`);
      assert.match(sums, new RegExp(bins[0]!));
      await productCommands((args, env) => run(`${out}/${bins[0]}`, args, env));
      await Deno.remove(home, { recursive: true }).catch(() => {});
    } finally {
      await Deno.remove(out, { recursive: true }).catch(() => {});
    }
  },
});
