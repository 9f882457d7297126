/**
 * The exec sandbox (lib/exec/sandbox.ts): real processes, real timeouts.
 * These tests run real commands, so the timing assertions use wall time.
 */
import assert from "node:assert/strict";
import {
  BWRAP_PATH,
  bwrapAvailable,
  bwrapCommand,
  runSandboxed,
  SandboxError,
  type SandboxOptions,
  sandboxPermissions,
  type SandboxResult,
} from "../lib/exec/sandbox.ts";

const SH = Deno.realPathSync("/bin/sh");

function run(over: Partial<SandboxOptions> & { binary: string }): Promise<SandboxResult> {
  return runSandboxed({
    args: [],
    cwd: Deno.cwd(),
    env: {},
    timeoutMs: 10_000,
    maxOutputBytes: 64 * 1024,
    ...over,
  });
}

/**
 * The process's state letter from /proc (R, S, Z...), or null when it is gone.
 * Read through cat: Deno wants --allow-all for /proc/<pid> files.
 */
async function procState(pid: number): Promise<string | null> {
  const out = await new Deno.Command("/usr/bin/cat", {
    args: [`/proc/${pid}/stat`],
    stdout: "piped",
    stderr: "null",
  }).output();
  if (!out.success) return null;
  const stat = new TextDecoder().decode(out.stdout);
  return stat.charAt(stat.lastIndexOf(")") + 2);
}

Deno.test("sandbox: echo gets its args verbatim, no shell", async () => {
  const r = await run({ binary: "/usr/bin/echo", args: ["hello", "two  words", "$HOME", "*"] });
  assert.equal(r.stdout, "hello two  words $HOME *\n");
  assert.equal(r.stderr, "");
  assert.equal(r.code, 0);
  assert.equal(r.signal, null);
  assert.equal(r.truncated, false);
  assert.equal(r.timedOut, false);
  assert.equal(r.aborted, false);
  assert.equal(r.sandbox, "worker");
  assert.ok(r.durationMs >= 0 && r.durationMs < 5_000, `durationMs ${r.durationMs}`);
});

Deno.test("sandbox: the command runs in cwd", async () => {
  const dir = Deno.realPathSync(await Deno.makeTempDir({ prefix: "gw-sandbox-cwd-" }));
  try {
    assert.notEqual(dir, Deno.cwd());
    const r = await run({ binary: "/usr/bin/pwd", cwd: dir });
    assert.equal(r.stdout, `${dir}\n`);
    assert.equal(r.code, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sandbox: the command gets exactly env, nothing of gw's", async () => {
  Deno.env.set("GW_SANDBOX_TEST_LEAK", "must-not-appear");
  try {
    const r = await run({
      binary: "/usr/bin/env",
      env: { GW_SANDBOX_A: "1", GW_SANDBOX_B: "two words=x" },
    });
    assert.equal(r.code, 0);
    assert.deepEqual(r.stdout.trimEnd().split("\n").sort(), [
      "GW_SANDBOX_A=1",
      "GW_SANDBOX_B=two words=x",
    ]);
  } finally {
    Deno.env.delete("GW_SANDBOX_TEST_LEAK");
  }
});

Deno.test("sandbox: exit code and stderr are reported", async () => {
  const r = await run({ binary: SH, args: ["-c", "echo oops >&2; exit 7"] });
  assert.equal(r.code, 7);
  assert.equal(r.signal, null);
  assert.equal(r.stdout, "");
  assert.equal(r.stderr, "oops\n");
});

Deno.test("sandbox: output is capped per stream, marked truncated, and still drained", async () => {
  // 200 KB is more than a pipe holds: if the worker stopped reading at the
  // cap, the writer would block and the run would time out instead.
  const r = await run({
    binary: SH,
    args: ["-c", "head -c 200000 /dev/zero | tr '\\0' a; echo small >&2"],
    maxOutputBytes: 1000,
    timeoutMs: 5_000,
  });
  assert.equal(r.timedOut, false);
  assert.equal(r.code, 0);
  assert.equal(r.truncated, true);
  assert.equal(r.stdout, "a".repeat(1000));
  assert.equal(r.stderr, "small\n");

  // A multi-byte character cut by the cap is dropped, not mangled.
  const e = await run({
    binary: "/usr/bin/echo",
    args: ["-n", "é".repeat(10)], // 20 bytes
    maxOutputBytes: 5,
  });
  assert.equal(e.truncated, true);
  assert.equal(e.stdout, "éé");

  const under = await run({ binary: "/usr/bin/echo", args: ["-n", "abc"], maxOutputBytes: 3 });
  assert.equal(under.truncated, false);
  assert.equal(under.stdout, "abc");
});

Deno.test("sandbox: the timeout kills sleep 30 with SIGTERM", async () => {
  const t0 = performance.now();
  const r = await run({ binary: "/usr/bin/sleep", args: ["30"], timeoutMs: 300 });
  const wall = performance.now() - t0;
  assert.equal(r.timedOut, true);
  assert.equal(r.aborted, false);
  assert.equal(r.signal, "SIGTERM");
  assert.equal(r.code, null);
  assert.ok(wall >= 290 && wall < 300 + 2_500, `took ${wall} ms`);
});

Deno.test("sandbox: a command ignoring SIGTERM gets SIGKILL, and its group is reaped", async () => {
  const t0 = performance.now();
  const r = await run({
    binary: SH,
    // The shell ignores TERM (and so does its sleep); it prints the sleep's pid.
    args: ["-c", "trap '' TERM; /usr/bin/sleep 30 & echo $!; wait"],
    timeoutMs: 300,
  });
  const wall = performance.now() - t0;
  const grandchild = Number(r.stdout.trim());
  try {
    assert.equal(r.timedOut, true);
    assert.equal(r.signal, "SIGKILL");
    assert.ok(wall >= 2_200 && wall < 300 + 2_000 + 2_000, `took ${wall} ms`);
    assert.ok(Number.isInteger(grandchild) && grandchild > 0, `stdout ${JSON.stringify(r.stdout)}`);
    // Give the kernel a moment to deliver the group SIGKILL.
    let state = await procState(grandchild);
    for (let i = 0; i < 20 && state !== null && state !== "Z"; i++) {
      await new Promise((res) => setTimeout(res, 50));
      state = await procState(grandchild);
    }
    assert.ok(state === null || state === "Z", `grandchild ${grandchild} is still ${state}`);
  } finally {
    if (grandchild > 0 && (await procState(grandchild)) !== null) {
      try {
        Deno.kill(grandchild, "SIGKILL");
      } catch { /* gone */ }
    }
  }
});

Deno.test("sandbox: aborting the signal kills the command", async () => {
  const ac = new AbortController();
  const t0 = performance.now();
  const timer = setTimeout(() => ac.abort(), 200);
  const r = await run({
    binary: "/usr/bin/sleep",
    args: ["30"],
    timeoutMs: 20_000,
    signal: ac.signal,
  });
  clearTimeout(timer);
  const wall = performance.now() - t0;
  assert.equal(r.aborted, true);
  assert.equal(r.timedOut, false);
  assert.equal(r.signal, "SIGTERM");
  assert.ok(wall >= 190 && wall < 2_000, `took ${wall} ms`);
});

Deno.test("sandbox: an abort right after the call still kills the command", async () => {
  const ac = new AbortController();
  const t0 = performance.now();
  const pending = run({ binary: "/usr/bin/sleep", args: ["30"], signal: ac.signal });
  ac.abort();
  const r = await pending;
  assert.equal(r.aborted, true);
  assert.equal(r.signal, "SIGTERM");
  assert.ok(performance.now() - t0 < 2_000);
});

Deno.test("sandbox: an already aborted signal runs nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gw-sandbox-abort-" });
  try {
    const marker = `${dir}/ran`;
    const r = await run({
      binary: "/usr/bin/touch",
      args: [marker],
      signal: AbortSignal.abort(),
    });
    assert.equal(r.aborted, true);
    assert.equal(r.code, null);
    await assert.rejects(Deno.stat(marker), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sandbox: output streams through onOutput, in order, before the end", async () => {
  const events: { stream: string; chunk: string; at: number }[] = [];
  const t0 = performance.now();
  const r = await run({
    binary: SH,
    args: ["-c", "echo first; sleep 0.3; echo second >&2; sleep 0.3; echo third"],
    onOutput: (stream, chunk) => events.push({ stream, chunk, at: performance.now() - t0 }),
  });
  const end = performance.now() - t0;
  assert.deepEqual(
    events.map((e) => [e.stream, e.chunk]),
    [["stdout", "first\n"], ["stderr", "second\n"], ["stdout", "third\n"]],
  );
  // The first chunk came while the command was still running, not at the end.
  assert.ok(end - events[0]!.at >= 450, `first chunk at ${events[0]!.at} ms, end at ${end} ms`);
  assert.equal(r.stdout, "first\nthird\n");
  assert.equal(r.stderr, "second\n");
});

Deno.test("sandbox: a worker with sandboxPermissions cannot run another binary", async () => {
  // A hostile module stands in for gw code gone wrong inside the worker. It
  // gets the production permissions, narrowed to /usr/bin/true.
  const hostile = `
    const attempt = async (what, fn) => {
      try { await fn(); return [what, "ok"]; }
      catch (e) { return [what, e.name + ": " + e.message]; }
    };
    const spawn = (bin, args = []) => () =>
      new Deno.Command(bin, { args, stdout: "null", stderr: "null" }).output();
    self.onmessage = async () => {
      self.postMessage([
        await attempt("true", spawn("/usr/bin/true")),
        await attempt("/bin/sh", spawn("/bin/sh", ["-c", "true"])),
        await attempt(${JSON.stringify(SH)}, spawn(${JSON.stringify(SH)}, ["-c", "true"])),
        await attempt("sh", spawn("sh", ["-c", "true"])),
        await attempt("kill", () => Deno.kill(1, "SIGCONT")),
        await attempt("read", () => Deno.readTextFile("/etc/hostname")),
        await attempt("write", () => Deno.writeTextFile("/tmp/gw-sandbox-hostile", "x")),
        await attempt("env", () => Deno.env.get("HOME")),
        await attempt("net", () => Deno.connect({ hostname: "127.0.0.1", port: 9 })),
      ]);
    };
  `;
  const url = URL.createObjectURL(new Blob([hostile], { type: "application/javascript" }));
  const worker = new Worker(url, {
    type: "module",
    deno: { permissions: sandboxPermissions("/usr/bin/true") },
  });
  try {
    const results = await new Promise<[string, string][]>((resolve, reject) => {
      worker.onmessage = (e) => resolve(e.data);
      worker.onerror = (e) => {
        e.preventDefault();
        reject(new Error(e.message));
      };
      worker.postMessage("go");
    });
    const byName = Object.fromEntries(results);
    assert.equal(byName["true"], "ok", "the permitted binary must run");
    for (const what of ["/bin/sh", SH, "sh", "kill", "read", "write", "env", "net"]) {
      assert.match(
        byName[what] ?? "",
        /^NotCapable: Requires (run|read|write|env|net) access/,
        what,
      );
    }
    assert.match(byName["/bin/sh"]!, /Requires run access to "\/bin\/sh"/);
  } finally {
    worker.terminate();
    URL.revokeObjectURL(url);
  }
});

Deno.test("sandbox: the production worker's run permission is narrowed (LD_PRELOAD refused)", async () => {
  // With a broad run permission Deno allows LD_PRELOAD; with run narrowed to
  // one binary it refuses it. So this fails if the worker were not narrowed.
  try {
    await run({ binary: "/usr/bin/env", env: { LD_PRELOAD: "/nonexistent/gw.so" } });
    assert.fail("expected a refusal");
  } catch (e) {
    assert.ok(e instanceof SandboxError, String(e));
    assert.equal((e.cause as Error).name, "NotCapable");
    assert.match(e.message, /LD_PRELOAD/);
  }
});

Deno.test("sandbox: spawn failures and bad options reject with SandboxError", async () => {
  await assert.rejects(run({ binary: "/nonexistent/gw-no-such-binary" }), (e: unknown) => {
    assert.ok(e instanceof SandboxError);
    assert.equal((e.cause as Error).name, "NotFound");
    return true;
  });
  await assert.rejects(run({ binary: "echo" }), /binary: expected an absolute path, got "echo"/);
  await assert.rejects(
    run({ binary: "/usr/bin/echo", cwd: "relative" }),
    /cwd: expected an absolute path/,
  );
  await assert.rejects(
    run({ binary: "/usr/bin/echo", timeoutMs: 0 }),
    /timeoutMs: expected a positive number, got 0/,
  );
});

Deno.test("sandbox: bwrap command line", () => {
  assert.deepEqual(bwrapCommand("/usr/bin/echo", ["a b", "c"], "/work"), {
    command: BWRAP_PATH,
    args: [
      "--ro-bind",
      "/",
      "/",
      "--dev",
      "/dev",
      "--proc",
      "/proc",
      "--tmpfs",
      "/tmp",
      "--unshare-net",
      "--die-with-parent",
      "--chdir",
      "/work",
      "--",
      "/usr/bin/echo",
      "a b",
      "c",
    ],
  });
});

Deno.test("sandbox: bwrap runs the command where installed, is refused where not", async () => {
  let installed = false;
  try {
    installed = Deno.statSync(BWRAP_PATH).isFile;
  } catch { /* not installed */ }
  assert.equal(bwrapAvailable(), installed);
  if (!installed) {
    await assert.rejects(
      run({ binary: "/usr/bin/echo", args: ["hi"], bwrap: true }),
      (e: unknown) => {
        assert.ok(e instanceof SandboxError);
        assert.match(e.message, /^bwrap is not installed \(expected \/usr\/bin\/bwrap\)/);
        return true;
      },
    );
    return;
  }
  const r = await run({ binary: "/usr/bin/echo", args: ["hi"], bwrap: true });
  assert.equal(r.sandbox, "worker+bwrap");
  assert.equal(r.stdout, "hi\n");
  // The root file system is read-only inside.
  const w = await run({
    binary: "/usr/bin/touch",
    args: [`${Deno.cwd()}/.gw-bwrap-probe`],
    bwrap: true,
  });
  assert.notEqual(w.code, 0);
});
