/**
 * The Control UI's admin pages in headless Chromium against a real gateway:
 * Cron (a job added in the page runs every second and its row and history
 * follow the `cron` events; the schedule preview in the browser's time zone
 * matches croner; edit, disable, run now, paging, remove) and Config (the
 * form saves with baseHash; a write in between shows a conflict and nothing
 * is overwritten until the person chooses; the gateway's field errors show
 * next to the field; secrets are never shown and stay when untouched; the
 * raw JSON view). With GW_UI_SCREENSHOTS=1 it saves
 * docs/screenshots/{cron,config}-{phone,desktop}.png.
 */
import assert from "node:assert/strict";
import { Cron } from "croner";
import {
  type Browser,
  consoleErrors,
  type Page,
  screenshot,
  SIZES,
  startUi,
  UI_TEST,
  type UiHarness,
} from "./_browser.ts";
import { type AnyFrame, connected, ok, type RawClient, until } from "./_helpers.ts";

const ZONE = "Europe/Berlin";

/** A page in its own browser context with the time zone `ZONE`, its errors recorded. */
async function zonedPage(
  browser: Browser,
  origin: string,
  size: { width: number; height: number },
): Promise<{ page: Page; errors: string[] }> {
  const ctx = await browser.newContext({
    viewport: size,
    timezoneId: ZONE,
    locale: "en-GB",
    colorScheme: "light",
  });
  const page = await ctx.newPage();
  const errors: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
  });
  page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
  page.setDefaultTimeout(10_000);
  await page.goto(`${origin}/`);
  return { page, errors };
}

/** Click away the toasts (they would cover a screenshot). */
async function dismissToasts(page: Page): Promise<void> {
  for (const toast of await page.locator(`[data-testid="toast"]`).all()) {
    await toast.click().catch(() => {});
  }
}

/** The row of the job named `name`. */
function row(page: Page, name: string) {
  return page.locator(`[data-testid="cron-job"]`, {
    has: page.locator(`[data-testid="cron-job-name"]`, { hasText: new RegExp(`^${name}$`) }),
  });
}

/** The next run times the page's preview shows, and the "now" it computed them from. */
async function previewTimes(
  page: Page,
): Promise<{ from: number; times: number[]; texts: string[] }> {
  const preview = page.locator(`[data-testid="cron-preview"]`);
  const from = Number(await preview.getAttribute("data-from"));
  const items = preview.locator("li");
  const times = (await items.evaluateAll((els) => els.map((e) => e.getAttribute("data-ms"))))
    .map(Number);
  const texts = await items.allTextContents();
  return { from, times, texts };
}

/** What croner (the scheduler's library, with the scheduler's options) says. */
function cronerTimes(expr: string, tz: string, from: number, n = 5): number[] {
  return new Cron(expr, { paused: true, timezone: tz, domAndDow: false })
    .nextRuns(n, new Date(from)).map((d) => d.getTime());
}

/** Type into the expression field as a person does, key by key. */
async function typeExpr(page: Page, expr: string): Promise<void> {
  const input = page.locator(`[data-testid="cron-form"] [name="expr"]`);
  await input.fill("");
  await input.pressSequentially(expr);
}

/** Wait until the preview shows `n` times for `expr` in `tz`, matching croner. */
async function expectPreview(page: Page, expr: string, tz: string): Promise<string[]> {
  let last: { from: number; times: number[]; texts: string[] } | undefined;
  await until(async () => {
    last = await previewTimes(page);
    return last.times.length === 5 && last.from > 0 &&
      JSON.stringify(last.times) === JSON.stringify(cronerTimes(expr, tz, last.from));
  }, `a preview of "${expr}" in ${tz} matching croner (last: ${JSON.stringify(last)})`);
  return last!.texts;
}

/** `HH:MM` of `ms` in ZONE, as en-GB writes it. */
function hm(ms: number, timeZone = ZONE): string {
  return new Intl.DateTimeFormat("en-GB", { timeZone, hour: "2-digit", minute: "2-digit" })
    .format(new Date(ms));
}

async function cronJobs(admin: RawClient): Promise<AnyFrame[]> {
  return (await ok(admin, "cron.list", { includeDisabled: true })).jobs;
}

Deno.test(
  "ui/vendor/croner.js is what `deno task ui:vendor` makes from the locked croner",
  async () => {
    const root = new URL("../", import.meta.url);
    const task: string = JSON.parse(await Deno.readTextFile(new URL("deno.json", root))).tasks[
      "ui:vendor"
    ];
    const m = /^deno (bundle .+) -o ui\/vendor\/croner\.js$/.exec(task);
    assert.ok(m, `deno.json tasks["ui:vendor"] reads "deno bundle ... -o ui/vendor/croner.js"`);
    const dir = await Deno.makeTempDir({ prefix: "gw-vendor-" });
    try {
      const out = await new Deno.Command(Deno.execPath(), {
        args: [...m[1]!.split(/\s+/), "-o", `${dir}/croner.js`],
        cwd: root.pathname,
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.ok(out.success, new TextDecoder().decode(out.stderr));
      const fresh = await Deno.readTextFile(`${dir}/croner.js`);
      const kept = await Deno.readTextFile(new URL("ui/vendor/croner.js", root));
      assert.ok(
        fresh === kept,
        "ui/vendor/croner.js is out of date: run `deno task ui:vendor` and commit it",
      );
      assert.match(kept, /export\s*\{[^}]*\bas Cron\b/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test({
  name:
    "ui cron: preview in the browser's zone, add a job that runs, edit, disable, run now, remove",
  ...UI_TEST,
}, async (t) => {
  await using ui = await startUi();
  const admin = await connected(ui.t.url);
  const { page, errors } = await zonedPage(ui.browser, ui.origin, SIZES.desktop);
  try {
    await ui.login(page);
    await ui.goto(page, "cron");
    await page.waitForSelector(`[data-testid="cron-empty"]`);

    await t.step(
      "the preview shows the next 5 runs in the browser's zone, as croner does",
      async () => {
        await page.click(`[data-testid="cron-new"]`);
        const form = page.locator(`[data-testid="cron-form"]`);
        await form.locator(`[name="scheduleKind"]`).selectOption("cron");
        // The zone field starts at the person's zone.
        assert.equal(await form.locator(`[name="tz"]`).inputValue(), ZONE);
        assert.equal(
          await page.locator(`[data-testid="cron-preview"]`).getAttribute("data-tz"),
          ZONE,
        );
        await typeExpr(page, "30 8 * * 1-5");
        const texts = await expectPreview(page, "30 8 * * 1-5", ZONE);
        for (const text of texts) assert.match(text, /08:30/, text);

        // A job in another zone: the times are shown in the person's zone.
        await form.locator(`[name="tz"]`).fill("Asia/Tokyo");
        await typeExpr(page, "0 9 * * *");
        const tokyo = await expectPreview(page, "0 9 * * *", "Asia/Tokyo");
        const first = cronerTimes("0 9 * * *", "Asia/Tokyo", Date.now(), 1)[0]!;
        assert.notEqual(hm(first), "09:00");
        assert.match(tokyo[0]!, new RegExp(hm(first)), tokyo[0]);

        // Seconds first (6 fields), and mistakes said in words.
        await form.locator(`[name="tz"]`).fill(ZONE);
        await typeExpr(page, "*/20 * * * * *");
        await expectPreview(page, "*/20 * * * * *", ZONE);
        await typeExpr(page, "0 8 * *");
        await page.waitForSelector(`[data-testid="cron-preview-error"]:text("4 fields")`);
        assert.equal(await page.locator(`[data-testid="cron-preview"] li`).count(), 0);
        await typeExpr(page, "61 8 * * *");
        await page.waitForSelector(`[data-testid="cron-preview-error"]:text("Not a valid cron")`);
        await form.locator(`[name="tz"]`).fill("Mars/Olympus");
        await typeExpr(page, "0 8 * * *");
        await page.waitForSelector(`[data-testid="cron-preview-error"]:text("Unknown time zone")`);
        await form.locator(`[name="tz"]`).fill(ZONE);
      },
    );

    let id = "";
    await t.step("an every-second job added in the page runs; events update its row", async () => {
      const form = page.locator(`[data-testid="cron-form"]`);
      await form.locator(`[name="name"]`).fill("tick");
      await form.locator(`[name="scheduleKind"]`).selectOption("every");
      await form.locator(`[name="everyValue"]`).fill("1");
      await form.locator(`[name="everyUnit"]`).selectOption("s");
      await until(async () => (await previewTimes(page)).times.length === 5, "an every preview");
      const { from, times } = await previewTimes(page);
      assert.deepEqual(times, [1, 2, 3, 4, 5].map((i) => from + i * 1000));
      await form.locator(`[name="payloadKind"]`).selectOption("systemEvent");
      await form.locator(`[name="text"]`).fill("ping");
      await form.locator(`[name="wakeMode"]`).selectOption("next-heartbeat");
      assert.equal(await form.locator(`[name="sessionTarget"]`).inputValue(), "main");
      await page.click(`[data-testid="cron-save"]`);
      await row(page, "tick").waitFor();
      assert.equal(await page.locator(`[data-testid="cron-form"]`).count(), 0);

      const [job] = await cronJobs(admin);
      assert.ok(job);
      id = job.id;
      assert.equal(job.name, "tick");
      assert.deepEqual(job.schedule, { kind: "every", everyMs: 1000 });
      assert.deepEqual(job.payload, { kind: "systemEvent", text: "ping" });
      assert.equal(job.sessionTarget, "main");
      assert.equal(job.wakeMode, "next-heartbeat");
      assert.equal(job.enabled, true);

      // The row follows the scheduler's events (the page does not poll).
      const r = row(page, "tick");
      await until(async () => (await r.getAttribute("data-last-status")) === "ok", "a run ok");
      const lastRun = await r.getAttribute("data-last-run");
      await until(
        async () => (await r.getAttribute("data-last-run")) !== lastRun,
        "the row to show the next run",
      );
      await until(
        async () => /ok/.test(await r.locator(`[data-testid="cron-job-last"]`).innerText()),
        "ok in the row",
      );

      // Its history.
      await r.locator(`[data-action="runs"]`).click();
      await page.waitForSelector(`[data-testid="cron-runs"][data-job-id="${id}"]`);
      await page.waitForSelector(`[data-testid="cron-run"][data-status="ok"][data-job-id="${id}"]`);
      const runs = await ok(admin, "cron.runs", { id });
      assert.ok(runs.entries.some((e: AnyFrame) => e.status === "ok"));
    });

    await t.step("edit: the form holds the job; a new name and period are saved", async () => {
      await row(page, "tick").locator(`[data-action="edit"]`).click();
      const form = page.locator(`[data-testid="cron-form"]`);
      assert.equal(await form.locator(`[name="name"]`).inputValue(), "tick");
      assert.equal(await form.locator(`[name="scheduleKind"]`).inputValue(), "every");
      assert.equal(await form.locator(`[name="everyValue"]`).inputValue(), "1");
      assert.equal(await form.locator(`[name="everyUnit"]`).inputValue(), "s");
      assert.equal(await form.locator(`[name="text"]`).inputValue(), "ping");
      await form.locator(`[name="name"]`).fill("tock");
      await form.locator(`[name="everyValue"]`).fill("2");
      await page.click(`[data-testid="cron-save"]`);
      await row(page, "tock").waitFor();
      const job = await ok(admin, "cron.get", { id });
      assert.equal(job.name, "tock");
      assert.equal(job.schedule.everyMs, 2000);
      assert.deepEqual(job.payload, { kind: "systemEvent", text: "ping" });
    });

    await t.step("a gateway error shows in the form, naming the field", async () => {
      await row(page, "tock").locator(`[data-action="edit"]`).click();
      const form = page.locator(`[data-testid="cron-form"]`);
      await form.locator(`[name="agentId"]`).fill("x".repeat(65));
      await page.click(`[data-testid="cron-save"]`);
      await page.waitForSelector(`[data-testid="cron-form-error"]:text("agentId")`);
      assert.equal(await form.locator(`[name="agentId"]`).getAttribute("aria-invalid"), "true");
      await page.click(`[data-testid="cron-cancel"]`);
      assert.equal((await ok(admin, "cron.get", { id })).agentId, undefined);
    });

    await t.step("disable, then run now: a manual run shows in the history", async () => {
      const r = row(page, "tock");
      await r.locator(`[data-action="toggle"]`).uncheck();
      await until(async () => (await ok(admin, "cron.get", { id })).enabled === false, "disabled");
      await until(async () => (await r.getAttribute("data-enabled")) === "false", "row disabled");
      await r.locator(`[data-action="run"]`).click();
      await page.waitForSelector(`[data-testid="cron-run"][data-manual="true"]`);
      const runs = await ok(admin, "cron.runs", { id });
      assert.ok(runs.entries.some((e: AnyFrame) => e.manual === true));
    });

    await t.step("paging: more jobs than a page", async () => {
      for (let i = 0; i < 21; i++) {
        await ok(admin, "cron.add", {
          name: `job ${String(i).padStart(2, "0")}`,
          schedule: { kind: "cron", expr: `${i} 8 * * *`, tz: "Asia/Shanghai" },
          payload: { kind: "agentTurn", message: "Summarise the news" },
        });
      }
      await until(
        async () => (await page.locator(`[data-testid="cron-range"]`).innerText()) === "1–20 of 22",
        "the first page of 22",
      );
      assert.equal(await page.locator(`[data-testid="cron-job"]`).count(), 20);
      await page.click(`[data-testid="cron-next"]`);
      await until(
        async () =>
          (await page.locator(`[data-testid="cron-range"]`).innerText()) === "21–22 of 22",
        "the second page",
      );
      assert.equal(await page.locator(`[data-testid="cron-job"]`).count(), 2);
      for (const j of await cronJobs(admin)) {
        if (j.id !== id) await ok(admin, "cron.remove", { id: j.id });
      }
      await until(
        async () => (await page.locator(`[data-testid="cron-job"]`).count()) === 1,
        "the other jobs gone (cron events)",
      );
    });

    await t.step("screenshots", async () => {
      await ok(admin, "cron.add", {
        name: "morning report",
        description: "Calendar and news, weekdays",
        schedule: { kind: "cron", expr: "0 8 * * 1-5", tz: "Asia/Shanghai" },
        payload: { kind: "agentTurn", message: "Summarise my calendar and the news I follow" },
        delivery: { mode: "announce", channel: "telegram", to: "123456" },
      });
      await ok(admin, "cron.add", {
        name: "stretch",
        schedule: { kind: "every", everyMs: 3_600_000 },
        payload: { kind: "systemEvent", text: "Time to stretch" },
      });
      await row(page, "morning report").waitFor();
      await row(page, "stretch").waitFor();
      await dismissToasts(page);
      await screenshot(page, "cron-desktop");
      const phone = await zonedPage(ui.browser, ui.origin, SIZES.phone);
      await ui.login(phone.page);
      await ui.goto(phone.page, "cron");
      await row(phone.page, "morning report").waitFor();
      await row(phone.page, "morning report").locator(`[data-action="edit"]`).click();
      await expectPreview(phone.page, "0 8 * * 1-5", "Asia/Shanghai");
      await phone.page.locator(`[data-testid="cron-preview"]`).evaluate((e) =>
        e.scrollIntoView({ block: "end" })
      );
      await screenshot(phone.page, "cron-phone");
      assert.deepEqual(phone.errors, []);
      await phone.page.context().close();
    });

    await t.step("remove asks once more, then the job is gone", async () => {
      const r = row(page, "tock");
      await r.locator(`[data-action="remove"]`).click();
      await r.locator(`[data-action="confirm-remove"]`).click();
      await row(page, "tock").waitFor({ state: "detached" });
      assert.ok(!(await cronJobs(admin)).some((j) => j.id === id));
    });

    assert.deepEqual(errors, []);
  } finally {
    await admin.close();
    await page.context().close();
  }
});

const SECRET = "sk-ant-api03-the-first-secret-0123456789";
const NEW_SECRET = "sk-ant-api03-a-second-secret-9876543210";

/** The config file as it is on disk. */
async function file(ui: UiHarness): Promise<AnyFrame> {
  return JSON.parse(await Deno.readTextFile(`${ui.t.stateDir}/gw.json`));
}

/** Open the form's section `key` (a collapsible top-level object). */
async function openSection(page: Page, key: string): Promise<void> {
  const d = page.locator(`details.config-section[data-path="${key}"]`);
  if (!(await d.evaluate((e) => e.hasAttribute("open")))) {
    await d.locator(":scope > summary").click();
  }
}

/** Wait until the page has saved: no unsaved changes, a hash other than `before`. */
async function saved(page: Page, before: string | null): Promise<string> {
  const status = page.locator(`[data-testid="config-status"]`);
  return await until(async () => {
    const h = await status.getAttribute("data-hash");
    return (await status.getAttribute("data-dirty")) === "false" && h && h !== before ? h : null;
  }, "the page to save and reload");
}

Deno.test({
  name: "ui config: form save with baseHash, conflicts shown, field errors, secrets kept, raw JSON",
  ...UI_TEST,
}, async (t) => {
  await using ui = await startUi({
    config: {
      logging: { level: "info" },
      agents: { defaults: { maxTokens: 4096 } },
      models: { providers: { anthropic: { apiKey: SECRET } } },
    },
  });
  const admin = await connected(ui.t.url);
  const page = await ui.page(SIZES.desktop);
  const status = page.locator(`[data-testid="config-status"]`);
  try {
    await ui.login(page);
    await ui.goto(page, "config");
    await page.waitForSelector(`[data-testid="config-form"]`);

    await t.step("a secret is a password field that never holds it", async () => {
      await openSection(page, "models");
      const box = page.locator(`.config-field[data-path="models.providers.anthropic.apiKey"]`);
      assert.equal(await box.getAttribute("data-secret"), "set");
      const input = box.locator("input");
      assert.equal(await input.getAttribute("type"), "password");
      assert.equal(await input.inputValue(), "");
      assert.equal(await input.getAttribute("placeholder"), "set — leave to keep");
      assert.ok(!(await page.content()).includes(SECRET));
      assert.ok(
        !(await page.evaluate(() => JSON.stringify(localStorage) + JSON.stringify(sessionStorage)))
          .includes(SECRET),
      );
    });

    let hash = await status.getAttribute("data-hash");
    await t.step(
      "edit in the form and save: only the changed fields, the secret stays",
      async () => {
        await openSection(page, "logging");
        await openSection(page, "agents");
        await page.selectOption(`[name="logging.level"]`, "debug");
        await page.fill(`[name="agents.defaults.maxTokens"]`, "2048");
        assert.equal(await status.getAttribute("data-dirty"), "true");
        await page.click(`[data-testid="config-save"]`);
        hash = await saved(page, hash);
        const f = await file(ui);
        assert.equal(f.logging.level, "debug");
        assert.equal(f.agents.defaults.maxTokens, 2048);
        assert.equal(f.models.providers.anthropic.apiKey, SECRET);
        assert.deepEqual(Object.keys(f).sort(), ["agents", "logging", "models"]);
        assert.equal((await ok(admin, "config.get", {})).hash, hash);
      },
    );

    await t.step(
      "a write in between: the page shows the conflict and overwrites nothing",
      async () => {
        const cur = await ok(admin, "config.get", {});
        await ok(admin, "config.patch", {
          patch: { agents: { defaults: { timeoutSeconds: 300 } } },
          baseHash: cur.hash,
        });
        await page.selectOption(`[name="logging.level"]`, "warn");
        await page.click(`[data-testid="config-save"]`);
        await page.waitForSelector(`[data-testid="config-conflict"]`);
        const theirs = page.locator(
          `[data-testid="config-conflict-row"][data-side="server"][data-path="agents.defaults.timeoutSeconds"]`,
        );
        assert.equal(await theirs.locator(".config-before").innerText(), "(not set)");
        assert.equal(await theirs.locator(".config-after").innerText(), "300");
        const mine = page.locator(
          `[data-testid="config-conflict-row"][data-side="mine"][data-path="logging.level"]`,
        );
        assert.equal(await mine.locator(".config-after").innerText(), "warn");
        const f = await file(ui);
        assert.equal(f.logging.level, "debug");
        assert.equal(f.agents.defaults.timeoutSeconds, 300);
      },
    );

    await t.step("reload shows their change and drops mine; then saving works", async () => {
      await page.click(`[data-testid="config-reload"]`);
      await page.waitForSelector(`[data-testid="config-conflict"]`, { state: "detached" });
      await openSection(page, "agents");
      assert.equal(await page.inputValue(`[name="agents.defaults.timeoutSeconds"]`), "300");
      assert.equal(await page.inputValue(`[name="logging.level"]`), "debug");
      hash = await status.getAttribute("data-hash");
      await page.selectOption(`[name="logging.level"]`, "warn");
      await page.click(`[data-testid="config-save"]`);
      hash = await saved(page, hash);
      const f = await file(ui);
      assert.equal(f.logging.level, "warn");
      assert.equal(f.agents.defaults.timeoutSeconds, 300);
      assert.equal(f.models.providers.anthropic.apiKey, SECRET);
    });

    await t.step("or save mine over theirs, when the person chooses to", async () => {
      const cur = await ok(admin, "config.get", {});
      await ok(admin, "config.patch", {
        patch: { logging: { maxFiles: 5 } },
        baseHash: cur.hash,
      });
      await page.selectOption(`[name="logging.level"]`, "error");
      await page.click(`[data-testid="config-save"]`);
      await page.waitForSelector(
        `[data-testid="config-conflict-row"][data-side="server"][data-path="logging.maxFiles"]`,
      );
      await page.click(`[data-testid="config-overwrite"]`);
      await page.waitForSelector(`[data-testid="config-conflict"]`, { state: "detached" });
      hash = await saved(page, hash);
      const f = await file(ui);
      assert.equal(f.logging.level, "error");
      assert.equal(f.logging.maxFiles, 5);
      assert.equal(f.models.providers.anthropic.apiKey, SECRET);
    });

    await t.step("the gateway's field errors show next to the field", async () => {
      const before = await Deno.readTextFile(`${ui.t.stateDir}/gw.json`);
      await openSection(page, "hooks");
      await page.check(`[name="hooks.enabled"]`);
      await page.click(`[data-testid="config-save"]`);
      await page.waitForSelector(`[data-testid="config-errors"]`);
      const err = page.locator(
        `.config-field[data-path="hooks.token"] [data-testid="config-field-error"]`,
      );
      await err.waitFor();
      assert.match(await err.innerText(), /hooks\.enabled needs hooks\.token/);
      assert.equal(await Deno.readTextFile(`${ui.t.stateDir}/gw.json`), before);
      await page.click(`[data-testid="config-discard"]`);
      await until(async () => (await status.getAttribute("data-dirty")) === "false", "discarded");
    });

    await t.step("a typed secret replaces the old one and is not shown afterwards", async () => {
      await openSection(page, "models");
      await page.fill(`[name="models.providers.anthropic.apiKey"]`, NEW_SECRET);
      await page.click(`[data-testid="config-save"]`);
      hash = await saved(page, hash);
      assert.equal((await file(ui)).models.providers.anthropic.apiKey, NEW_SECRET);
      assert.equal(await page.inputValue(`[name="models.providers.anthropic.apiKey"]`), "");
      assert.ok(!(await page.content()).includes(NEW_SECRET));
    });

    await t.step("the raw JSON view: secrets redacted, edits saved the same way", async () => {
      await page.click(`[data-testid="config-view-raw"]`);
      const raw = page.locator(`[data-testid="config-raw"]`);
      const text = await raw.inputValue();
      assert.ok(text.includes("__GW_REDACTED__"));
      assert.ok(!text.includes(NEW_SECRET) && !text.includes(SECRET));
      await raw.fill(text.replace(`"level": "error"`, `"level": "warn"`));
      await page.click(`[data-testid="config-save"]`);
      hash = await saved(page, hash);
      const f = await file(ui);
      assert.equal(f.logging.level, "warn");
      assert.equal(f.models.providers.anthropic.apiKey, NEW_SECRET);
      await raw.fill("{ not json");
      await page.waitForSelector(`[data-testid="config-raw-error"]:text("Not valid JSON")`);
      await page.click(`[data-testid="config-view-form"]`);
      assert.equal(await page.locator(`[data-testid="config-form"]`).count(), 0);
      await raw.fill(text.replace(`"level": "error"`, `"level": "warn"`));
      await page.click(`[data-testid="config-view-form"]`);
      await page.waitForSelector(`[data-testid="config-form"]`);
    });

    await t.step("finding a setting shows only the fields that match", async () => {
      await page.fill(`[data-testid="config-search"]`, "maxfiles");
      const field = page.locator(`.config-field[data-path="logging.maxFiles"]`);
      await field.waitFor({ state: "visible" });
      assert.ok(await page.locator(`details.config-section[data-path="gateway"]`).isHidden());
      assert.ok(await page.locator(`.config-field[data-path="logging.level"]`).isHidden());
      await page.fill(`[data-testid="config-search"]`, "");
      await page.locator(`details.config-section[data-path="gateway"]`).waitFor();
    });

    await t.step("screenshots", async () => {
      await dismissToasts(page);
      await openSection(page, "logging");
      await openSection(page, "agents");
      await page.selectOption(`[name="logging.level"]`, "debug");
      await page.evaluate("scrollTo(0, 0)");
      await screenshot(page, "config-desktop");
      const phone = await ui.page(SIZES.phone);
      await ui.login(phone);
      await ui.goto(phone, "config");
      await phone.waitForSelector(`[data-testid="config-form"]`);
      await openSection(phone, "models");
      await screenshot(phone, "config-phone");
      assert.deepEqual(consoleErrors(phone), []);
      await phone.context().close();
    });

    assert.deepEqual(consoleErrors(page), []);
  } finally {
    await admin.close();
    await page.context().close();
  }
});
