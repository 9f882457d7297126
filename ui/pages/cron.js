/**
 * Cron: scheduled jobs (`cron.list`, paged), their next runs, run history
 * (`cron.runs`), add and edit (`cron.add` / `cron.update` with OpenClaw's
 * params), run now (`cron.run`), enable/disable, remove. Live `cron` events
 * update the rows and the history as jobs start and finish.
 *
 * The editor previews the next 5 run times in the person's time zone as they
 * type. Cron expressions are computed with the same croner (ui/vendor/croner.js,
 * `deno task ui:vendor`) and the same options as the scheduler (lib/cron/schedule.ts:
 * `domAndDow: false`, the job's zone, its stagger), so the preview is what will run.
 *
 * DOM hooks (data-testid):
 * - `cron-status`: the scheduler line; `cron-new`: the "New job" button.
 * - `cron-jobs`: the job list; `cron-job` (data-job-id, data-enabled,
 *   data-last-status, data-last-run, data-running, data-next-run): one job, with
 *   `cron-job-name`, `cron-job-schedule`, `cron-job-next`, `cron-job-last`, and
 *   controls `[data-action=toggle|run|runs|edit|remove]` (remove asks again:
 *   the button turns into `[data-action=confirm-remove]`).
 * - `cron-empty`: no jobs; `cron-pager` with `cron-prev`, `cron-next`, `cron-range`.
 * - `cron-runs`: the run history (`data-job-id` when it shows one job), rows
 *   `cron-run` (data-status, data-job-id, data-run-id, data-manual), `cron-runs-all`, `cron-runs-more`.
 * - `cron-form`: the editor (inputs by `name`: name, description, agentId, enabled,
 *   scheduleKind, everyValue, everyUnit, at, deleteAfterRun, expr, tz, payloadKind,
 *   text, wakeMode, message, model, thinking, timeoutSeconds, sessionTarget,
 *   sessionKey, announce, channel, to, accountId, bestEffort), `cron-save`,
 *   `cron-cancel`, `cron-form-error`.
 * - `cron-preview` (data-from: the "now" of the preview in epoch ms, data-tz:
 *   the zone the times are shown in): the next runs as `li` with data-ms;
 *   `cron-preview-error` when the schedule is not valid.
 *
 * @module
 */
import { clear, debounce, h, notAvailable } from "../lib/dom.js";
import { dateTime, duration, relative } from "../lib/fmt.js";

const PAGE_SIZE = 20;
const RUNS_PAGE = 20;
const PREVIEW_COUNT = 5;

/** The person's IANA time zone. */
function userZone() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}

/** @type {Promise<any> | undefined} */
let cronerLoad;

/** Load croner (the browser bundle) the first time a cron expression is previewed. */
function loadCroner() {
  cronerLoad ??= import("../vendor/croner.js").then((m) => m.Cron).catch((e) => {
    cronerLoad = undefined;
    throw e;
  });
  return cronerLoad;
}

/**
 * The scheduler's stagger offset for a job (lib/cron/schedule.ts staggerOffset).
 * @param {string} jobId
 * @param {number} staggerMs
 */
function staggerOffset(jobId, staggerMs) {
  if (!staggerMs || staggerMs <= 0) return 0;
  let x = 2166136261;
  for (let i = 0; i < jobId.length; i++) x = Math.imul(x ^ jobId.charCodeAt(i), 16777619);
  return (x >>> 0) % Math.floor(staggerMs);
}

/**
 * Whether `tz` is a time zone this browser knows.
 * @param {string} tz
 */
function validZone(tz) {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/**
 * The next run times of a schedule after `now`, as the scheduler computes them.
 * Throws an Error with a message for a person when the schedule is not valid.
 * @param {any} schedule `{kind:"every", everyMs, anchorMs?}`, `{kind:"at", at}` or `{kind:"cron", expr, tz?, staggerMs?}`
 * @param {{ now: number, Cron?: any, jobId?: string, createdAtMs?: number, count?: number }} o
 * @returns {number[]}
 */
export function nextRuns(schedule, o) {
  const count = o.count ?? PREVIEW_COUNT;
  const now = o.now;
  if (schedule.kind === "every") {
    const every = Number(schedule.everyMs);
    if (!Number.isFinite(every) || every < 1000) {
      throw new Error("The period must be at least 1 second.");
    }
    const anchor = schedule.anchorMs ?? o.createdAtMs ?? now;
    const out = [];
    let t = now < anchor ? anchor : anchor + (Math.floor((now - anchor) / every) + 1) * every;
    for (let i = 0; i < count; i++, t += every) out.push(t);
    return out;
  }
  if (schedule.kind === "at") {
    const t = Date.parse(schedule.at);
    if (!Number.isFinite(t)) throw new Error("Pick a date and time.");
    if (t <= now) throw new Error("That time is in the past.");
    return [t];
  }
  const expr = String(schedule.expr ?? "").trim();
  if (!expr) throw new Error("Type a cron expression, such as 0 8 * * 1-5.");
  const fields = expr.split(/\s+/).length;
  if (fields !== 5 && fields !== 6) {
    throw new Error(
      `This expression has ${fields} field${fields === 1 ? "" : "s"}; a cron expression has 5 ` +
        "(minute hour day month weekday) or 6 (with seconds first).",
    );
  }
  const tz = schedule.tz || userZone();
  if (!validZone(tz)) {
    throw new Error(`Unknown time zone "${tz}" (use a name such as Europe/Berlin or Asia/Tokyo).`);
  }
  let job;
  try {
    job = new o.Cron(expr, { paused: true, timezone: tz, domAndDow: false });
  } catch (e) {
    throw new Error(`Not a valid cron expression: ${/** @type {Error} */ (e).message}`);
  }
  const stagger = staggerOffset(o.jobId ?? "", schedule.staggerMs ?? 0);
  const out = [];
  let after = now;
  for (let i = 0; i < count; i++) {
    const slot = job.nextRun(new Date(after - stagger));
    if (!slot) break;
    after = slot.getTime() + stagger;
    out.push(after);
  }
  if (!out.length) throw new Error("This expression never fires.");
  return out;
}

/**
 * A run time in the person's zone, with seconds when the schedule has them.
 * @param {number} ms
 * @param {boolean} seconds
 * @param {string} [timeZone]
 */
function when(ms, seconds, timeZone) {
  return new Intl.DateTimeFormat(undefined, {
    weekday: "short",
    year: "numeric",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    ...(seconds ? { second: "2-digit" } : {}),
    ...(timeZone ? { timeZone, timeZoneName: "short" } : {}),
  }).format(new Date(ms));
}

/**
 * The time of `ms` in another zone, short: "Mon 08:00 GMT+8".
 * @param {number} ms
 * @param {boolean} seconds
 * @param {string} timeZone
 */
function zoneTime(ms, seconds, timeZone) {
  return new Intl.DateTimeFormat(undefined, {
    weekday: "short",
    hour: "2-digit",
    minute: "2-digit",
    ...(seconds ? { second: "2-digit" } : {}),
    timeZone,
    timeZoneName: "short",
  }).format(new Date(ms));
}

/**
 * A schedule in words.
 * @param {any} s
 */
function describeSchedule(s) {
  if (!s) return "";
  if (s.kind === "every") return `every ${duration(s.everyMs)}`;
  if (s.kind === "at") return `once, ${dateTime(Date.parse(s.at))}`;
  return `cron ${s.expr}${s.tz ? ` (${s.tz})` : ""}${
    s.staggerMs ? `, spread over ${duration(s.staggerMs)}` : ""
  }`;
}

/**
 * What a job does, in words.
 * @param {any} job
 */
function describePayload(job) {
  const p = job.payload ?? {};
  const target = job.sessionTarget === "main"
    ? "main session"
    : job.sessionTarget === "isolated"
    ? "its own session"
    : job.sessionTarget;
  if (p.kind === "systemEvent") {
    return `System event to the ${target}${
      job.wakeMode === "next-heartbeat" ? " (next heartbeat)" : ""
    }: ${p.text}`;
  }
  const announce = job.delivery?.mode === "announce"
    ? `, announced${job.delivery.channel ? ` on ${job.delivery.channel}` : ""}`
    : "";
  return `Agent turn in ${target}${announce}: ${p.message ?? ""}`;
}

/**
 * JSON with sorted keys, to compare two schedules.
 * @param {unknown} v
 * @returns {string}
 */
function canonical(v) {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (v && typeof v === "object") {
    return `{${
      Object.keys(v).sort().filter((k) => /** @type {any} */ (v)[k] !== undefined).map((k) =>
        `${JSON.stringify(k)}:${canonical(/** @type {any} */ (v)[k])}`
      ).join(",")
    }}`;
  }
  return JSON.stringify(v);
}

/** @param {string | undefined} status */
function statusBadge(status) {
  const kind = status === "ok" ? "ok" : status === "error" ? "err" : status ? "warn" : "";
  return h("span", { class: ["badge", kind] }, status ?? "never run");
}

/**
 * A `datetime-local` value (local time) for an epoch ms.
 * @param {number} ms
 */
function localInput(ms) {
  const d = new Date(ms);
  /** @param {number} n */
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${
    p(d.getMinutes())
  }`;
}

const UNITS = /** @type {[string, number, string][]} */ ([
  ["s", 1000, "seconds"],
  ["min", 60_000, "minutes"],
  ["h", 3_600_000, "hours"],
  ["d", 86_400_000, "days"],
]);

/**
 * The largest unit that divides `ms`.
 * @param {number} ms
 * @returns {[number, string]}
 */
function splitPeriod(ms) {
  for (let i = UNITS.length - 1; i >= 0; i--) {
    const [u, f] = /** @type {[string, number, string]} */ (UNITS[i]);
    if (ms % f === 0) return [ms / f, u];
  }
  return [ms / 1000, "s"];
}

/**
 * @param {HTMLElement} el
 * @param {any} app
 * @returns {() => void}
 */
function mount(el, app) {
  const methods = app.hello?.features?.methods ?? [];
  clear(el, h("h1", null, "Cron"));
  if (!methods.includes("cron.list")) {
    el.append(notAvailable("Cron"));
    return () => {};
  }
  const canEdit = ["cron.add", "cron.update", "cron.remove", "cron.run"].every((m) =>
    methods.includes(m)
  );

  /** @type {any[]} */
  let jobs = [];
  let offset = 0;
  let total = 0;
  /** @type {string | null} */
  let runsJob = null;
  let runsOffset = 0;
  /** @type {any[]} */
  let runs = [];
  let runsMore = false;
  let alive = true;
  /** @type {string | null} */
  let confirmRemove = null;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let confirmTimer;

  const statusLine = h("p", { class: "muted small cron-status", "data-testid": "cron-status" });
  const newBtn = h("button", {
    type: "button",
    class: "primary",
    "data-testid": "cron-new",
    disabled: !canEdit,
    onclick: () => openEditor(null),
  }, "New job");
  const editorBox = h("section", { class: "card cron-editor", hidden: true });
  const list = h("div", { class: "cron-jobs", "data-testid": "cron-jobs" });
  const range = h("span", { class: "muted small", "data-testid": "cron-range" });
  const prev = h("button", {
    type: "button",
    class: "small",
    "data-testid": "cron-prev",
    onclick: () => {
      offset = Math.max(0, offset - PAGE_SIZE);
      void loadJobs();
    },
  }, "Previous");
  const next = h("button", {
    type: "button",
    class: "small",
    "data-testid": "cron-next",
    onclick: () => {
      offset += PAGE_SIZE;
      void loadJobs();
    },
  }, "Next");
  const pager = h(
    "div",
    { class: "row cron-pager", "data-testid": "cron-pager" },
    prev,
    range,
    next,
  );
  const runsTitle = h("h2", { class: "grow" }, "Run history");
  const runsAll = h("button", {
    type: "button",
    class: "small ghost",
    "data-testid": "cron-runs-all",
    hidden: true,
    onclick: () => showRuns(null),
  }, "All jobs");
  const runsList = h("div", { class: "cron-runs-list" });
  const runsMoreBtn = h("button", {
    type: "button",
    class: "small",
    "data-testid": "cron-runs-more",
    hidden: true,
    onclick: () => {
      runsOffset += RUNS_PAGE;
      void loadRuns(true);
    },
  }, "Older runs");
  const runsBox = h(
    "section",
    { class: "card cron-runs", "data-testid": "cron-runs" },
    h("div", { class: "toolbar" }, runsTitle, runsAll),
    runsList,
    h("div", { class: "row" }, runsMoreBtn),
  );

  clear(
    el,
    h("div", { class: "toolbar" }, h("h1", null, "Cron"), newBtn),
    statusLine,
    editorBox,
    h("div", { class: "cron-layout" }, h("div", { class: "stack" }, list, pager), runsBox),
  );

  // ---------------------------------------------------------------- loading

  async function loadStatus() {
    if (!methods.includes("cron.status")) return;
    try {
      const s = await app.request("cron.status", {});
      if (!alive) return;
      const nextWake = typeof s.nextWakeAtMs === "number"
        ? `next run ${relative(s.nextWakeAtMs)} (${when(s.nextWakeAtMs, false)})`
        : "nothing scheduled";
      clear(
        statusLine,
        `${s.jobs} job${s.jobs === 1 ? "" : "s"}, ${s.enabledJobs} enabled` +
          (s.running ? `, ${s.running} running` : "") + ` · ${nextWake} · times in ${userZone()}`,
      );
    } catch (e) {
      clear(statusLine, /** @type {Error} */ (e).message);
    }
  }
  const statusSoon = debounce(() => void loadStatus(), 500);

  async function loadJobs() {
    try {
      const r = await app.request("cron.list", {
        includeDisabled: true,
        limit: PAGE_SIZE,
        offset,
      });
      if (!alive) return;
      if (r.jobs.length === 0 && offset > 0 && r.total > 0) {
        offset = Math.max(0, Math.floor((r.total - 1) / PAGE_SIZE) * PAGE_SIZE);
        return loadJobs();
      }
      jobs = r.jobs;
      total = r.total;
      renderJobs();
    } catch (e) {
      clear(list, h("p", { class: "error" }, /** @type {Error} */ (e).message));
    }
  }
  const jobsSoon = debounce(() => void loadJobs(), 300);

  /** @param {boolean} [append] */
  async function loadRuns(append = false) {
    if (!methods.includes("cron.runs")) {
      runsBox.hidden = true;
      return;
    }
    if (!append) runsOffset = 0;
    try {
      const r = await app.request("cron.runs", {
        ...(runsJob ? { id: runsJob } : {}),
        limit: RUNS_PAGE,
        offset: runsOffset,
      });
      if (!alive) return;
      runs = append ? [...runs, ...r.entries] : r.entries;
      runsMore = r.hasMore;
      renderRuns();
    } catch (e) {
      if (/** @type {any} */ (e).details?.code === "CRON_JOB_NOT_FOUND") return showRuns(null);
      clear(runsList, h("p", { class: "error" }, /** @type {Error} */ (e).message));
    }
  }
  const runsSoon = debounce(() => void loadRuns(), 400);

  /** @param {string | null} id */
  function showRuns(id) {
    runsJob = id;
    const job = id ? jobs.find((j) => j.id === id) : null;
    clear(runsTitle, id ? `Run history: ${job?.name ?? id}` : "Run history");
    runsAll.hidden = !id;
    if (id) runsBox.dataset.jobId = id;
    else delete runsBox.dataset.jobId;
    void loadRuns();
    if (id && globalThis.matchMedia?.("(max-width: 820px)").matches) {
      runsBox.scrollIntoView({ block: "start" });
    }
  }

  // ---------------------------------------------------------------- rendering

  function renderJobs() {
    clear(list);
    if (!jobs.length) {
      list.append(
        h(
          "p",
          { class: "empty", "data-testid": "cron-empty" },
          offset ? "No jobs on this page." : "No scheduled jobs yet. Add one with “New job”.",
        ),
      );
    }
    for (const job of jobs) list.append(jobRow(job));
    pager.hidden = total <= PAGE_SIZE && offset === 0;
    clear(
      range,
      total ? `${offset + 1}–${Math.min(offset + jobs.length, total)} of ${total}` : "0 jobs",
    );
    /** @type {HTMLButtonElement} */ (prev).disabled = offset === 0;
    /** @type {HTMLButtonElement} */ (next).disabled = offset + jobs.length >= total;
  }

  /** @param {any} job */
  function jobRow(job) {
    const st = job.state ?? {};
    const nextAt = job.nextRunAtMs ?? st.nextRunAtMs ?? null;
    const running = st.runningAtMs !== undefined;
    const seconds = job.schedule?.kind === "every"
      ? job.schedule.everyMs % 60_000 !== 0
      : job.schedule?.kind === "cron" && job.schedule.expr.trim().split(/\s+/).length === 6;
    const nextText = !job.enabled
      ? "disabled"
      : typeof nextAt === "number"
      ? `${when(nextAt, seconds)} (${relative(nextAt)})`
      : "none";
    const last = typeof st.lastRunAtMs === "number"
      ? [
        statusBadge(st.lastStatus),
        ` ${relative(st.lastRunAtMs)}`,
        typeof st.lastDurationMs === "number" ? ` · ${duration(st.lastDurationMs)}` : "",
        st.lastStatus === "error" && st.lastError
          ? h("span", { class: "error" }, ` · ${st.lastError}`)
          : "",
      ]
      : [statusBadge(undefined)];
    const removing = confirmRemove === job.id;
    return h(
      "article",
      {
        class: ["cron-job", !job.enabled && "cron-job-disabled"],
        "data-testid": "cron-job",
        dataset: {
          jobId: job.id,
          enabled: String(job.enabled),
          lastStatus: st.lastStatus ?? "",
          lastRun: st.lastRunAtMs ?? "",
          running: String(running),
          nextRun: nextAt ?? "",
        },
      },
      h(
        "div",
        { class: "cron-job-head" },
        h("strong", { class: "cron-job-name", "data-testid": "cron-job-name" }, job.name),
        running ? h("span", { class: "badge warn" }, "running") : null,
        job.enabled ? null : h("span", { class: "badge" }, "disabled"),
      ),
      job.description ? h("p", { class: "muted small cron-job-desc" }, job.description) : null,
      h(
        "dl",
        { class: "cron-job-facts" },
        h("dt", null, "Schedule"),
        h("dd", { "data-testid": "cron-job-schedule" }, describeSchedule(job.schedule)),
        h("dt", null, "Next"),
        h("dd", { "data-testid": "cron-job-next" }, nextText),
        h("dt", null, "Last"),
        h("dd", { "data-testid": "cron-job-last" }, last),
        h("dt", null, "Does"),
        h("dd", { class: "cron-job-does" }, describePayload(job)),
      ),
      h(
        "div",
        { class: "row cron-job-actions" },
        h(
          "label",
          { class: "check" },
          h("input", {
            type: "checkbox",
            "data-action": "toggle",
            checked: job.enabled,
            disabled: !canEdit,
            onchange: (/** @type {Event} */ ev) =>
              setEnabled(job, /** @type {HTMLInputElement} */ (ev.target).checked),
          }),
          h("span", null, "Enabled"),
        ),
        h("span", { class: "grow" }),
        h("button", {
          type: "button",
          class: "small",
          "data-action": "run",
          disabled: !canEdit,
          onclick: () => runNow(job),
        }, "Run now"),
        h("button", {
          type: "button",
          class: "small",
          "data-action": "runs",
          onclick: () => showRuns(job.id),
        }, "History"),
        h("button", {
          type: "button",
          class: "small",
          "data-action": "edit",
          disabled: !canEdit,
          onclick: () => openEditor(job),
        }, "Edit"),
        removing
          ? h("button", {
            type: "button",
            class: "small danger",
            "data-action": "confirm-remove",
            onclick: () => remove(job),
          }, "Remove for good?")
          : h("button", {
            type: "button",
            class: "small ghost",
            "data-action": "remove",
            disabled: !canEdit,
            onclick: () => {
              confirmRemove = job.id;
              clearTimeout(confirmTimer);
              confirmTimer = setTimeout(() => {
                confirmRemove = null;
                renderJobs();
              }, 5000);
              renderJobs();
            },
          }, "Remove"),
      ),
    );
  }

  /** @param {any} job */
  function replaceRow(job) {
    const i = jobs.findIndex((j) => j.id === job.id);
    if (i < 0) return false;
    jobs[i] = job;
    if (runsJob === job.id) clear(runsTitle, `Run history: ${job.name}`);
    const old = list.querySelector(`[data-testid="cron-job"][data-job-id="${CSS.escape(job.id)}"]`);
    if (old) old.replaceWith(jobRow(job));
    return true;
  }

  function renderRuns() {
    clear(runsList);
    if (!runs.length) {
      runsList.append(h("p", { class: "empty" }, "No runs yet."));
    } else {
      const names = new Map(jobs.map((j) => [j.id, j.name]));
      runsList.append(h(
        "ul",
        { class: "cron-run-items" },
        runs.map((r) =>
          h(
            "li",
            {
              class: "cron-run",
              "data-testid": "cron-run",
              dataset: {
                status: r.status,
                jobId: r.jobId,
                runId: r.runId,
                manual: String(!!r.manual),
              },
            },
            h(
              "div",
              { class: "row" },
              statusBadge(r.status),
              h("span", { class: "small" }, when(r.startedAtMs, true)),
              h(
                "span",
                { class: "muted small" },
                typeof r.durationMs === "number" ? duration(r.durationMs) : "",
              ),
              r.manual ? h("span", { class: "badge" }, "manual") : null,
              runsJob ? null : h(
                "span",
                { class: "muted small grow cron-run-job" },
                names.get(r.jobId) ?? r.jobId,
              ),
            ),
            r.error ? h("div", { class: "error small" }, r.error) : null,
            r.summary ? h("div", { class: "small cron-run-summary" }, r.summary) : null,
          )
        ),
      ));
    }
    runsMoreBtn.hidden = !runsMore;
  }

  // ---------------------------------------------------------------- actions

  /** @param {any} job @param {boolean} enabled */
  async function setEnabled(job, enabled) {
    try {
      const updated = await app.request("cron.update", { id: job.id, patch: { enabled } });
      replaceRow(updated);
      app.toast(`${job.name}: ${enabled ? "enabled" : "disabled"}.`, "ok");
    } catch (e) {
      app.toast(/** @type {Error} */ (e).message, "error");
      replaceRow(job);
    }
  }

  /** @param {any} job */
  async function runNow(job) {
    try {
      const r = await app.request("cron.run", { id: job.id, mode: "force" });
      app.toast(
        r.ran === false
          ? `${job.name} did not start: ${r.reason ?? "it is already running"}.`
          : `${job.name} started.`,
        r.ran === false ? "info" : "ok",
      );
      if (runsJob !== job.id) showRuns(job.id);
    } catch (e) {
      app.toast(/** @type {Error} */ (e).message, "error");
    }
  }

  /** @param {any} job */
  async function remove(job) {
    confirmRemove = null;
    clearTimeout(confirmTimer);
    try {
      await app.request("cron.remove", { id: job.id });
      jobs = jobs.filter((j) => j.id !== job.id);
      total = Math.max(0, total - 1);
      renderJobs();
      if (runsJob === job.id) showRuns(null);
      app.toast(`Removed ${job.name}.`, "ok");
      jobsSoon();
    } catch (e) {
      app.toast(/** @type {Error} */ (e).message, "error");
      renderJobs();
    }
  }

  // ---------------------------------------------------------------- editor

  /** @type {(() => void) | null} */
  let closeEditor = null;

  /** @param {any | null} job */
  function openEditor(job) {
    closeEditor?.();
    /** @type {{ el: HTMLElement, close: () => void } | undefined} */
    let ed = undefined;
    const finish = () => {
      ed?.close();
      if (closeEditor === finish) closeEditor = null;
      clear(editorBox);
      editorBox.hidden = true;
    };
    ed = editor(job, finish);
    closeEditor = finish;
    clear(editorBox, ed.el);
    editorBox.hidden = false;
    editorBox.scrollIntoView({ block: "start" });
    /** @type {HTMLInputElement | null} */ (ed.el.querySelector("input[name=name]"))?.focus();
  }

  /**
   * The add/edit form.
   * @param {any | null} job
   * @param {() => void} done
   */
  function editor(job, done) {
    const zone = userZone();
    const s = job?.schedule ?? { kind: "every", everyMs: 3_600_000 };
    const p = job?.payload ?? { kind: "systemEvent", text: "" };
    const [everyValue, everyUnit] = splitPeriod(s.kind === "every" ? s.everyMs : 3_600_000);
    const target = job?.sessionTarget ?? "";
    /** @type {Record<string, HTMLInputElement & HTMLSelectElement & HTMLTextAreaElement>} */
    const f = /** @type {any} */ ({});
    /**
     * @param {string} tag
     * @param {string} name
     * @param {Record<string, unknown>} attrs
     * @param {...unknown} children
     */
    const field = (tag, name, attrs, ...children) => {
      const id = `cron-f-${name}`;
      const node = /** @type {any} */ (h(tag, { id, name, ...attrs }, ...children));
      f[name] = node;
      return node;
    };
    /** @param {string} value @param {string} label @param {boolean} sel */
    const opt = (value, label, sel) => h("option", { value, selected: sel }, label);
    /** @param {string} name @param {string} label @param {unknown} control @param {string} [help] */
    const labelled = (name, label, control, help) =>
      h(
        "div",
        { class: "cron-field", dataset: { field: name } },
        h("label", { for: `cron-f-${name}` }, label),
        control,
        help ? h("p", { class: "muted small" }, help) : null,
      );
    /** @param {string} name @param {string} label @param {boolean} checked */
    const check = (name, label, checked) =>
      h(
        "label",
        { class: "check" },
        field("input", name, { type: "checkbox", checked }),
        h("span", null, label),
      );

    const kindSel = field(
      "select",
      "scheduleKind",
      {},
      opt("every", "Every… (a fixed period)", s.kind === "every"),
      opt("at", "Once, at a time", s.kind === "at"),
      opt("cron", "Cron expression (with a time zone)", s.kind === "cron"),
    );
    const everyBox = h(
      "div",
      { class: "cron-sched", dataset: { kind: "every" } },
      labelled(
        "everyValue",
        "Every",
        h(
          "div",
          { class: "row cron-every" },
          field("input", "everyValue", {
            type: "number",
            min: "1",
            step: "any",
            value: String(everyValue),
            inputmode: "decimal",
          }),
          field(
            "select",
            "everyUnit",
            {},
            UNITS.map(([u, , label]) => opt(u, label, u === everyUnit)),
          ),
        ),
        "At least 1 second. The first run is one period after the job is added.",
      ),
    );
    const atMs = s.kind === "at" ? Date.parse(s.at) : Date.now() + 3_600_000;
    const atBox = h(
      "div",
      { class: "cron-sched", dataset: { kind: "at" } },
      labelled(
        "at",
        `Date and time (${zone})`,
        field("input", "at", { type: "datetime-local", value: localInput(atMs), step: "60" }),
      ),
      check("deleteAfterRun", "Remove the job after it succeeds", job?.deleteAfterRun !== false),
    );
    const zones = typeof Intl.supportedValuesOf === "function"
      ? Intl.supportedValuesOf("timeZone")
      : [];
    const cronBox = h(
      "div",
      { class: "cron-sched", dataset: { kind: "cron" } },
      labelled(
        "expr",
        "Cron expression",
        field("input", "expr", {
          type: "text",
          value: s.kind === "cron" ? s.expr : "",
          placeholder: "0 8 * * 1-5",
          spellcheck: "false",
          autocapitalize: "off",
          autocomplete: "off",
          class: "cron-mono",
        }),
        "Minute hour day-of-month month day-of-week (6 fields: seconds first). " +
          "Day of month and day of week combine with OR, as classic cron does.",
      ),
      labelled(
        "tz",
        "Time zone",
        field("input", "tz", {
          type: "text",
          value: s.kind === "cron" && s.tz ? s.tz : zone,
          list: "cron-tz-list",
          spellcheck: "false",
          autocapitalize: "off",
          autocomplete: "off",
        }),
        "The zone the expression is read in (an IANA name). Yours is " + zone + ".",
      ),
      h("datalist", { id: "cron-tz-list" }, zones.map((z) => h("option", { value: z }))),
    );

    const previewList = h("ol", { class: "cron-preview-list" });
    const previewNote = h("p", { class: "muted small" });
    const previewErr = h("p", {
      class: "error small",
      "data-testid": "cron-preview-error",
      role: "alert",
    });
    const preview = h(
      "div",
      {
        class: "cron-preview",
        "data-testid": "cron-preview",
        "aria-live": "polite",
        dataset: { tz: zone },
      },
      h("h3", null, `Next runs, in your time (${zone})`),
      previewErr,
      previewList,
      previewNote,
    );

    const payloadSel = field(
      "select",
      "payloadKind",
      {},
      opt("systemEvent", "System event: a note told to the agent", p.kind === "systemEvent"),
      opt("agentTurn", "Agent turn: a message the agent answers", p.kind === "agentTurn"),
    );
    const sysBox = h(
      "div",
      { class: "cron-payload", dataset: { kind: "systemEvent" } },
      labelled(
        "text",
        "Event text",
        field("textarea", "text", { rows: "2", value: p.kind === "systemEvent" ? p.text : "" }),
      ),
      labelled(
        "wakeMode",
        "When the agent hears it",
        field(
          "select",
          "wakeMode",
          {},
          opt("now", "At once (runs a turn now)", (job?.wakeMode ?? "now") === "now"),
          opt(
            "next-heartbeat",
            "On the next heartbeat or turn",
            job?.wakeMode === "next-heartbeat",
          ),
        ),
      ),
    );
    const delivery = job?.delivery?.mode === "announce" ? job.delivery : null;
    const announceBox = h(
      "div",
      { class: "cron-announce" },
      labelled(
        "channel",
        "Channel",
        field("input", "channel", {
          type: "text",
          value: delivery?.channel ?? "",
          placeholder: "telegram",
        }),
      ),
      labelled(
        "to",
        "To (chat id)",
        field("input", "to", { type: "text", value: delivery?.to ?? "" }),
      ),
      labelled(
        "accountId",
        "Account",
        field("input", "accountId", {
          type: "text",
          value: delivery?.accountId ?? "",
          placeholder: "default",
        }),
      ),
      check(
        "bestEffort",
        "Best effort (a failed delivery does not fail the run)",
        delivery?.bestEffort === true,
      ),
    );
    const turnBox = h(
      "div",
      { class: "cron-payload", dataset: { kind: "agentTurn" } },
      labelled(
        "message",
        "Message",
        field("textarea", "message", { rows: "3", value: p.kind === "agentTurn" ? p.message : "" }),
      ),
      h(
        "div",
        { class: "cron-grid" },
        labelled(
          "model",
          "Model",
          field("input", "model", {
            type: "text",
            value: p.model ?? "",
            placeholder: "the agent's default",
          }),
        ),
        labelled(
          "thinking",
          "Thinking",
          field(
            "select",
            "thinking",
            {},
            opt("", "the session's default", !p.thinking),
            ["off", "minimal", "low", "medium", "high", "xhigh"].map((t) =>
              opt(t, t, p.thinking === t)
            ),
          ),
        ),
        labelled(
          "timeoutSeconds",
          "Time limit (seconds)",
          field("input", "timeoutSeconds", {
            type: "number",
            min: "1",
            max: "86400",
            step: "1",
            value: p.timeoutSeconds ? String(p.timeoutSeconds) : "",
            placeholder: "default",
          }),
        ),
      ),
      check("announce", "Announce the reply on a channel", !!delivery),
      announceBox,
    );

    const sessionSel = field(
      "select",
      "sessionTarget",
      {},
      opt("main", "The main session", target === "main"),
      opt("isolated", "Its own session, fresh each run", target === "isolated"),
      opt("session", "A named session…", target.startsWith("session:")),
    );
    const sessionKey = field("input", "sessionKey", {
      type: "text",
      value: target.startsWith("session:") ? target.slice("session:".length) : "",
      placeholder: "session key",
      "aria-label": "Session key",
    });

    const err = h("p", { class: "error", "data-testid": "cron-form-error", role: "alert" });
    const form = h(
      "form",
      { class: "stack cron-form", "data-testid": "cron-form", novalidate: true },
      h("h2", null, job ? `Edit ${job.name}` : "New job"),
      h(
        "div",
        { class: "cron-grid" },
        labelled(
          "name",
          "Name",
          field("input", "name", {
            type: "text",
            value: job?.name ?? "",
            required: true,
            maxlength: "200",
          }),
        ),
        labelled(
          "description",
          "Description",
          field("input", "description", {
            type: "text",
            value: job?.description ?? "",
            placeholder: "optional",
          }),
        ),
        labelled(
          "agentId",
          "Agent",
          field("input", "agentId", {
            type: "text",
            value: job?.agentId ?? "",
            placeholder: "the default agent",
          }),
        ),
      ),
      check("enabled", "Enabled", job ? job.enabled !== false : true),
      h(
        "fieldset",
        { class: "cron-fieldset" },
        h("legend", null, "When"),
        labelled("scheduleKind", "Schedule", kindSel),
        everyBox,
        atBox,
        cronBox,
        preview,
      ),
      h(
        "fieldset",
        { class: "cron-fieldset" },
        h("legend", null, "What"),
        labelled("payloadKind", "Kind", payloadSel),
        sysBox,
        turnBox,
        labelled(
          "sessionTarget",
          "Session",
          h("div", { class: "row cron-session" }, sessionSel, sessionKey),
        ),
      ),
      err,
      h(
        "div",
        { class: "row" },
        h(
          "button",
          { type: "submit", class: "primary", "data-testid": "cron-save" },
          job ? "Save changes" : "Add job",
        ),
        h(
          "button",
          { type: "button", "data-testid": "cron-cancel", onclick: () => done() },
          "Cancel",
        ),
      ),
    );

    let previewSeq = 0;

    /** The schedule the form describes (throws for a person when it cannot). */
    function scheduleOf() {
      const kind = f.scheduleKind.value;
      if (kind === "every") {
        const n = Number(f.everyValue.value);
        const unit = UNITS.find(([u]) => u === f.everyUnit.value) ?? UNITS[0];
        if (!f.everyValue.value.trim() || !Number.isFinite(n) || n <= 0) {
          throw new Error("Type how often, such as 1 hour or 30 seconds.");
        }
        const everyMs = Math.round(n * unit[1]);
        /** @type {any} */
        const out = { kind: "every", everyMs };
        if (s.kind === "every" && s.anchorMs !== undefined) out.anchorMs = s.anchorMs;
        return out;
      }
      if (kind === "at") {
        const v = f.at.value;
        const t = v ? new Date(v).getTime() : NaN; // datetime-local: the person's local time
        if (!Number.isFinite(t)) throw new Error("Pick a date and time.");
        return { kind: "at", at: new Date(t).toISOString() };
      }
      /** @type {any} */
      const out = { kind: "cron", expr: f.expr.value.trim().replace(/\s+/g, " ") };
      out.tz = f.tz.value.trim() || zone;
      if (s.kind === "cron" && s.staggerMs) out.staggerMs = s.staggerMs;
      return out;
    }

    async function updatePreview() {
      const seq = ++previewSeq;
      const now = Date.now();
      let times = [];
      let schedule;
      let Cron;
      try {
        schedule = scheduleOf();
        if (schedule.kind === "cron") Cron = await loadCroner();
        if (seq !== previewSeq) return;
        times = nextRuns(schedule, {
          now,
          Cron,
          ...(job ? { jobId: job.id, createdAtMs: job.createdAtMs } : {}),
        });
        clear(previewErr);
      } catch (e) {
        if (seq !== previewSeq) return;
        clear(previewErr, /** @type {Error} */ (e).message);
        clear(previewList);
        clear(previewNote);
        preview.dataset.from = String(now);
        return;
      }
      const seconds = schedule.kind === "every"
        ? schedule.everyMs % 60_000 !== 0
        : schedule.kind === "cron" && schedule.expr.split(" ").length === 6;
      const otherZone = schedule.kind === "cron" && schedule.tz !== zone ? schedule.tz : null;
      preview.dataset.from = String(now);
      clear(
        previewList,
        times.map((t) =>
          h(
            "li",
            { dataset: { ms: t } },
            h("span", { class: "cron-preview-time" }, when(t, seconds)),
            h("span", { class: "muted small" }, ` ${relative(t, now)}`),
            otherZone
              ? h("span", { class: "muted small" }, ` · ${zoneTime(t, seconds, otherZone)}`)
              : null,
          )
        ),
      );
      clear(
        previewNote,
        schedule.kind === "every" && !job
          ? "Counted from now; the gateway counts from the moment it adds the job."
          : schedule.kind === "at"
          ? "Runs once."
          : "",
      );
    }

    function sync() {
      const kind = f.scheduleKind.value;
      for (const box of [everyBox, atBox, cronBox]) box.hidden = box.dataset.kind !== kind;
      const pk = f.payloadKind.value;
      sysBox.hidden = pk !== "systemEvent";
      turnBox.hidden = pk !== "agentTurn";
      announceBox.hidden = !f.announce.checked;
      // main takes a systemEvent, isolated an agentTurn (the gateway enforces it too).
      const mainOpt =
        /** @type {HTMLOptionElement} */ (f.sessionTarget.querySelector("option[value=main]"));
      const isoOpt =
        /** @type {HTMLOptionElement} */ (f.sessionTarget.querySelector("option[value=isolated]"));
      mainOpt.disabled = pk !== "systemEvent";
      isoOpt.disabled = pk !== "agentTurn";
      if (f.sessionTarget.value === "main" && pk !== "systemEvent") {
        f.sessionTarget.value = "isolated";
      }
      if (f.sessionTarget.value === "isolated" && pk !== "agentTurn") {
        f.sessionTarget.value = "main";
      }
      sessionKey.hidden = f.sessionTarget.value !== "session";
    }
    if (!target) f.sessionTarget.value = p.kind === "agentTurn" ? "isolated" : "main";

    const previewSoon = debounce(() => void updatePreview(), 120);
    form.addEventListener("input", (ev) => {
      const name = /** @type {HTMLInputElement} */ (ev.target).name;
      if (["scheduleKind", "everyValue", "everyUnit", "at", "expr", "tz"].includes(name)) {
        previewSoon();
      }
    });
    form.addEventListener("change", () => {
      sync();
      previewSoon();
    });
    const tick = setInterval(() => void updatePreview(), 30_000);

    /** The params of cron.add (or the patch of cron.update). */
    function paramsOf() {
      /** @type {Record<string, unknown>} */
      const out = {};
      const name = f.name.value.trim();
      if (!name) throw Object.assign(new Error("Give the job a name."), { field: "name" });
      out.name = name;
      const desc = f.description.value.trim();
      if (desc || job?.description) out.description = desc;
      const agent = f.agentId.value.trim();
      if (agent) out.agentId = agent;
      out.enabled = f.enabled.checked;
      let schedule;
      try {
        schedule = scheduleOf();
      } catch (e) {
        throw Object.assign(e instanceof Error ? e : new Error(String(e)), {
          field: "scheduleKind",
        });
      }
      if (!job || canonical(schedule) !== canonical(job.schedule)) out.schedule = schedule;
      if (schedule.kind === "at") out.deleteAfterRun = f.deleteAfterRun.checked;
      const pk = f.payloadKind.value;
      if (pk === "systemEvent") {
        const text = f.text.value.trim();
        if (!text) throw Object.assign(new Error("Type the event's text."), { field: "text" });
        out.payload = { kind: "systemEvent", text };
        out.wakeMode = f.wakeMode.value;
      } else {
        const message = f.message.value.trim();
        if (!message) {
          throw Object.assign(new Error("Type the message for the agent."), { field: "message" });
        }
        /** @type {Record<string, unknown>} */
        const payload = { kind: "agentTurn", message };
        if (f.model.value.trim()) payload.model = f.model.value.trim();
        if (f.thinking.value) payload.thinking = f.thinking.value;
        if (f.timeoutSeconds.value.trim()) payload.timeoutSeconds = Number(f.timeoutSeconds.value);
        out.payload = payload;
        if (f.announce.checked) {
          /** @type {Record<string, unknown>} */
          const d = { mode: "announce" };
          for (const k of ["channel", "to", "accountId"]) {
            const v = f[k].value.trim();
            if (v) d[k] = v;
          }
          if (f.bestEffort.checked) d.bestEffort = true;
          out.delivery = d;
        } else if (job?.delivery) out.delivery = job.delivery.mode === "none" ? job.delivery : null;
      }
      if (f.sessionTarget.value === "session") {
        const key = f.sessionKey.value.trim();
        if (!key) {
          throw Object.assign(new Error("Type the session's key."), { field: "sessionKey" });
        }
        out.sessionTarget = `session:${key}`;
      } else out.sessionTarget = f.sessionTarget.value;
      return out;
    }

    /** @param {string | undefined} name */
    function markField(name) {
      for (const x of form.querySelectorAll("[aria-invalid]")) x.removeAttribute("aria-invalid");
      const node = name ? f[name] : undefined;
      if (node) {
        node.setAttribute("aria-invalid", "true");
        node.focus();
      }
    }

    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clear(err);
      let params;
      try {
        params = paramsOf();
      } catch (e) {
        clear(err, /** @type {Error} */ (e).message);
        markField(/** @type {any} */ (e).field);
        return;
      }
      markField(undefined);
      const save = /** @type {HTMLButtonElement} */ (form.querySelector("button[type=submit]"));
      save.disabled = true;
      try {
        const saved = job
          ? await app.request("cron.update", { id: job.id, patch: params })
          : await app.request("cron.add", params);
        app.toast(job ? `Saved ${saved.name}.` : `Added ${saved.name}.`, "ok");
        if (!replaceRow(saved)) jobsSoon();
        statusSoon();
        done();
      } catch (e) {
        const msg = /** @type {Error} */ (e).message;
        clear(err, msg);
        // "params.schedule.expr: ..." / details.field name the field at fault.
        const m = /params\.([A-Za-z.]+)/.exec(msg);
        const path = /** @type {any} */ (e).details?.field ?? m?.[1] ?? "";
        const leaf = String(path).split(".").pop() ?? "";
        const byLeaf = /** @type {Record<string, string>} */ ({
          expr: "expr",
          tz: "tz",
          at: "at",
          everyMs: "everyValue",
          sessionTarget: "sessionTarget",
          text: "text",
          message: "message",
          name: "name",
          agentId: "agentId",
          model: "model",
          timeoutSeconds: "timeoutSeconds",
          channel: "channel",
          to: "to",
        });
        markField(byLeaf[leaf]);
      } finally {
        save.disabled = false;
      }
    });

    sync();
    void updatePreview();
    return {
      el: form,
      close: () => {
        clearInterval(tick);
        previewSoon.cancel();
        previewSeq++;
      },
    };
  }

  // ---------------------------------------------------------------- live events

  /** @param {any} ev */
  function onCron(ev) {
    if (!ev || typeof ev !== "object") return;
    const id = ev.jobId;
    const cur = jobs.find((j) => j.id === id);
    switch (ev.action) {
      case "added":
        jobsSoon();
        break;
      case "updated":
        if (ev.job && !replaceRow(ev.job)) jobsSoon();
        break;
      case "removed":
        if (cur) {
          jobs = jobs.filter((j) => j.id !== id);
          total = Math.max(0, total - 1);
          renderJobs();
        }
        jobsSoon();
        if (runsJob === id) showRuns(null);
        break;
      case "started":
        if (cur) {
          const state = { ...cur.state, runningAtMs: Date.now() };
          if ("nextRunAtMs" in ev) state.nextRunAtMs = ev.nextRunAtMs ?? undefined;
          replaceRow({ ...cur, state, nextRunAtMs: state.nextRunAtMs ?? null });
        }
        if (!runsJob || runsJob === id) runsSoon();
        break;
      case "finished":
      case "skipped":
        if (cur) {
          const state = { ...cur.state, lastRunAtMs: Date.now() };
          if (ev.action === "finished") {
            delete state.runningAtMs;
            state.lastStatus = ev.status;
            if (typeof ev.durationMs === "number") state.lastDurationMs = ev.durationMs;
            if (ev.error) state.lastError = ev.error;
            else delete state.lastError;
          } else state.lastStatus = "skipped";
          if ("nextRunAtMs" in ev) state.nextRunAtMs = ev.nextRunAtMs ?? undefined;
          if (ev.removed) jobsSoon();
          else replaceRow({ ...cur, state, nextRunAtMs: state.nextRunAtMs ?? null });
        }
        if (!runsJob || runsJob === id) runsSoon();
        break;
      default:
        jobsSoon();
    }
    statusSoon();
  }

  const offCron = app.on("cron", onCron);
  const offConn = app.on("connection", (/** @type {any} */ c) => {
    if (c?.state === "connected") {
      void loadJobs();
      void loadRuns();
      void loadStatus();
    }
  });
  // Relative times ("in 5 min") move on without asking the gateway.
  const refresh = setInterval(() => {
    if (!document.hidden) renderJobs();
  }, 30_000);

  void loadJobs();
  void loadRuns();
  void loadStatus();

  return () => {
    alive = false;
    offCron();
    offConn();
    clearInterval(refresh);
    clearTimeout(confirmTimer);
    jobsSoon.cancel();
    runsSoon.cancel();
    statusSoon.cancel();
    closeEditor?.();
  };
}

export default { id: "cron", title: "Cron", mount };
