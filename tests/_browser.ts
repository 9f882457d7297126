/**
 * Browser test helpers for the Control UI: a real gateway (tests/_helpers.ts
 * startTestGateway) and headless Chromium (Debian's `chromium` at
 * /usr/bin/chromium) driven by playwright-core.
 *
 * ```ts
 * Deno.test({ name: "...", ...UI_TEST }, async () => {
 *   await using ui = await startUi();
 *   const page = await ui.page({ width: 360, height: 740 });
 *   await ui.login(page);
 *   await ui.goto(page, "chat");
 *   await screenshot(page, "chat-phone");
 * });
 * ```
 *
 * Tests skip themselves (`ignore`) when /usr/bin/chromium is missing; `.ci/run`
 * installs it. Every page records the WebSocket URLs it opens and its console
 * errors (see {@link wsUrls} and {@link consoleErrors}).
 *
 * @module
 */
import type { Browser, Page } from "npm:playwright-core@1.65.1";
import fs from "node:fs";
import { startTestGateway, type TestGateway, type TestGatewayOptions } from "./_helpers.ts";

export type { Browser, Page };

/** Where the browser is expected (Debian's `chromium` package). */
export const CHROMIUM = "/usr/bin/chromium";

function chromiumPresent(): boolean {
  try {
    return Deno.statSync(CHROMIUM).isFile;
  } catch {
    return false;
  }
}

/** True when headless Chromium can be used here. */
export const HAVE_CHROMIUM: boolean = chromiumPresent();

/** Why the UI tests are skipped, for the test name or a log line; empty when they run. */
export const SKIP_REASON: string = HAVE_CHROMIUM
  ? ""
  : `${CHROMIUM} is missing (apt-get install chromium; .ci/run installs it)`;

if (!HAVE_CHROMIUM) console.warn(`UI browser tests skipped: ${SKIP_REASON}`);

/**
 * Deno.test options every UI test spreads: ignored without Chromium, and no
 * op/resource sanitizers (playwright keeps a pipe and timers to the browser
 * process that outlive a single test step).
 */
export const UI_TEST: { ignore: boolean; sanitizeOps: false; sanitizeResources: false } = {
  ignore: !HAVE_CHROMIUM,
  sanitizeOps: false,
  sanitizeResources: false,
};

/** What a page recorded: WebSocket URLs it opened, console errors, page errors. */
interface PageLog {
  ws: string[];
  errors: string[];
}
const logs = new WeakMap<Page, PageLog>();

/** Every WebSocket URL the page has opened so far (page.on("websocket")). */
export function wsUrls(page: Page): string[] {
  return [...(logs.get(page)?.ws ?? [])];
}

/** Console errors and uncaught page errors so far (CSP violations show up here). */
export function consoleErrors(page: Page): string[] {
  return [...(logs.get(page)?.errors ?? [])];
}

/** Options of {@link startUi}. */
export interface StartUiOptions extends TestGatewayOptions {
  /** Written to `<state>/gw.json` before start (as in startTestGateway). */
  config?: Record<string, unknown>;
}

/** Options of {@link UiHarness.page}. */
export interface PageOptions {
  /** Viewport width in CSS px (default 1280). */
  width?: number;
  /** Viewport height in CSS px (default 800). */
  height?: number;
  /** Navigate to this path of the gateway first (default "/"; null: do not navigate). */
  path?: string | null;
}

/** A gateway and a browser for one test; `await using` closes both. */
export interface UiHarness extends AsyncDisposable {
  /** The running test gateway (replaced by {@link UiHarness.restart}). */
  readonly t: TestGateway;
  /** The browser. */
  readonly browser: Browser;
  /** `http://127.0.0.1:<port>` — the page's origin. */
  readonly origin: string;
  /** A new page in its own context (fresh storage, IndexedDB) at `origin + path`. */
  page(opts?: PageOptions): Promise<Page>;
  /** Type the token into the login form and wait until `#conn` says connected. */
  login(page: Page, token?: string, opts?: { remember?: boolean }): Promise<void>;
  /** Go to a page of the app (`#/<id>`) and wait for `main#page[data-page=<id>]`. */
  goto(page: Page, id: string): Promise<void>;
  /** Wait until `#conn[data-state=<state>]`. */
  waitConn(
    page: Page,
    state: "connecting" | "connected" | "disconnected",
    timeoutMs?: number,
  ): Promise<void>;
  /**
   * Stop the gateway (its sockets close) and start it again on the same port
   * and state dir; resolves once the new one listens.
   */
  restart(): Promise<TestGateway>;
  /** Close the browser, stop the gateway, remove the state dir. */
  close(): Promise<void>;
}

let pw: Promise<typeof import("npm:playwright-core@1.65.1")> | undefined;

/**
 * playwright-core, loaded on first use. When it loads it probes a few special
 * files (`/proc/sys/fs/binfmt_misc/WSLInterop`, to detect WSL) with
 * `fs.existsSync`; Deno answers such /proc paths with NotCapable under any
 * permission set short of `-A`, where Node answers false. So `existsSync` is
 * made to answer false for what it may not look at, as Node would for a
 * missing file, for the whole test process (only `existsSync`, only on error).
 */
function playwright(): Promise<typeof import("npm:playwright-core@1.65.1")> {
  if (!pw) {
    const exists = fs.existsSync;
    (fs as { existsSync: typeof fs.existsSync }).existsSync = (p) => {
      try {
        return exists(p);
      } catch {
        return false;
      }
    };
    pw = import("npm:playwright-core@1.65.1");
  }
  return pw;
}

/** Start a test gateway and headless Chromium. */
export async function startUi(opts: StartUiOptions = {}): Promise<UiHarness> {
  const ownState = !opts.stateDir;
  const stateDir = opts.stateDir ?? await Deno.makeTempDir({ prefix: "gw-ui-test-" });
  let t = await startTestGateway({ ...opts, stateDir });
  const port = t.port;
  let browser: Browser;
  try {
    const { chromium } = await playwright();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
    });
  } catch (e) {
    await t.stop();
    if (ownState) await Deno.remove(stateDir, { recursive: true }).catch(() => {});
    throw e;
  }
  const origin = `http://127.0.0.1:${port}`;
  let closed = false;

  const harness: UiHarness = {
    get t() {
      return t;
    },
    browser,
    origin,
    async page(po: PageOptions = {}): Promise<Page> {
      const ctx = await browser.newContext({
        viewport: { width: po.width ?? 1280, height: po.height ?? 800 },
        colorScheme: "light",
      });
      const page = await ctx.newPage();
      const log: PageLog = { ws: [], errors: [] };
      logs.set(page, log);
      page.on("websocket", (ws) => log.ws.push(ws.url()));
      page.on("console", (m) => {
        if (m.type() === "error") log.errors.push(m.text());
      });
      page.on("pageerror", (e) => log.errors.push(`pageerror: ${e.message}`));
      page.setDefaultTimeout(10_000);
      if (po.path !== null) await page.goto(origin + (po.path ?? "/"));
      return page;
    },
    async login(page, token = t.token, lo = {}): Promise<void> {
      await page.waitForSelector("form#login input#token");
      await page.fill("input#token", token);
      if (lo.remember) await page.check("input#remember");
      await page.click("form#login button[type=submit]");
      await harness.waitConn(page, "connected");
    },
    async goto(page, id): Promise<void> {
      await page.evaluate((h) => (location.hash = h), `#/${id}`);
      await page.waitForSelector(`main#page[data-page="${id}"]`);
    },
    async waitConn(page, state, timeoutMs = 10_000): Promise<void> {
      await page.waitForSelector(`#conn[data-state="${state}"]`, {
        timeout: timeoutMs,
        state: "attached",
      });
    },
    async restart(): Promise<TestGateway> {
      await t.gw.shutdown("test restart");
      const { config: _written, ...rest } = opts;
      t = await startTestGateway({ ...rest, stateDir, port });
      return t;
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await browser.close().catch(() => {});
      await t.stop();
      if (ownState) await Deno.remove(stateDir, { recursive: true }).catch(() => {});
    },
    [Symbol.asyncDispose]() {
      return harness.close();
    },
  };
  return harness;
}

/** True when screenshots are to be written (GW_UI_SCREENSHOTS=1). */
export const SCREENSHOTS: boolean = Deno.env.get("GW_UI_SCREENSHOTS") === "1";

/**
 * Save `docs/screenshots/<name>.png` (e.g. "chat-phone", "chat-desktop"), only
 * when GW_UI_SCREENSHOTS=1 so CI does not rewrite the files.
 */
export async function screenshot(page: Page, name: string): Promise<void> {
  if (!SCREENSHOTS) return;
  const dir = new URL("../docs/screenshots/", import.meta.url);
  await Deno.mkdir(dir, { recursive: true });
  await page.screenshot({ path: new URL(`${name}.png`, dir).pathname, fullPage: false });
}

/** Both screenshot sizes of the contract: phone 360x740 and desktop 1280x800. */
export const SIZES: {
  phone: { width: number; height: number };
  desktop: { width: number; height: number };
} = {
  phone: { width: 360, height: 740 },
  desktop: { width: 1280, height: 800 },
};
