/**
 * The dashboard end to end: headless Chromium (Debian's /usr/bin/chromium via playwright-core) against the
 * real lab app on an embedded PGlite database with an in-process worker. Every page loads without console
 * errors; the charts draw their series (pixels of the series colour on the uPlot canvas); the figures shown
 * match hand-computed ones from seeded results; a bad form value shows its field error; a valid demo job
 * shows live progress; a valid experiment starts, is cancelled and deleted; a task file is imported (a bad
 * line is named), and a comparison file becomes a pairwise task; a pairwise task and result are marked as
 * such (the tasks list's format, the form's disabled prompting baselines, the note on what a pairwise
 * accuracy counts) and classification ones are not; and one REAL w2s job (two tiny random-weight checkpoints of the ladder's nano and micro
 * shapes, the imported task, probe student) runs through the worker and its result shows on the experiment
 * page. Screenshots of each page go to $TEST_ARTIFACTS or /tmp/lab-screenshots.
 * Without Chromium the test is skipped, unless REQUIRE_ALL=1.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { jobs as jobsTable } from "../db/schema.ts";
import { type LabDb, openDb } from "../db/client.ts";
import { createApp } from "../server/api/app.ts";
import { EventBus } from "../server/jobs/bus.ts";
import "../server/jobs/handlers.ts";
import { enqueueJob } from "../server/jobs/queue.ts";
import { startWorker } from "../server/jobs/worker.ts";
import { createServerApp } from "../server/main.ts";
import type { ExperimentResult, ResultsSummary } from "../server/contract/results.ts";
import type { WorldOverview } from "../server/contract/world.ts";
import { summarizeResults } from "../server/lab/sweep.ts";
import { buildDashboard } from "../web/build.ts";
import { formatParams } from "../web/lib/format.ts";
import { colourTaskJsonl, writeTinyLadder } from "./e2e/checkpoints.ts";
import {
  AUXCONF_MEDIAN_PGR,
  EARLY_STOP_TEXT,
  NAIVE_MEDIAN_PGR,
  PAIRWISE_TASK,
  seedPairwiseResult,
  seedResults,
} from "./e2e/seed.ts";

const CHROMIUM = Deno.env.get("CHROMIUM_PATH") ?? "/usr/bin/chromium";
const haveChromium = await Deno.stat(CHROMIUM).then(() => true, () => false);
const requireAll = Deno.env.get("REQUIRE_ALL") === "1";
const ARTIFACTS = Deno.env.get("TEST_ARTIFACTS") ?? "/tmp/lab-screenshots";
const TOKEN = "dashboard-test-token";
const UNHANDLED_TYPE = "no-such-job-type";
/** What the dashboard says once where a pairwise result's accuracies are shown. */
const PAIRWISE_NOTE =
  /Pairwise accuracy: share of test pairs ranked correctly\..*agreement is agreement on which member/;

/** Counts canvas pixels within a small distance of an RGB colour (a drawn series, not axes or grid). */
async function colouredPixels(page: Page, selector: string, hex: string): Promise<number> {
  return await page.$eval(selector, (canvas, hex) => {
    const c = canvas as HTMLCanvasElement;
    const want = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
    const data = c.getContext("2d")!.getImageData(0, 0, c.width, c.height).data;
    let count = 0;
    for (let i = 0; i < data.length; i += 4) {
      if (data[i + 3] > 200 && want.every((w, k) => Math.abs(data[i + k] - w) < 24)) count++;
    }
    return count;
  }, hex);
}

/** The page under test, the lab's address, and a full-page screenshot of the page into ARTIFACTS. */
interface Ui {
  page: Page;
  base: string;
  shot: (name: string) => Promise<void>;
}

/** The lab app on a fresh PGlite data directory, served on a free port, with an in-process worker. */
async function startLab() {
  const dataDir = await Deno.makeTempDir({ prefix: "lab-dashboard-test-" });
  const opened = await openDb({ dataDir });
  const bus = new EventBus();
  // Only the demo job and a type nobody handles run here: experiments stay queued (so the test does not
  // depend on the W2S pipeline), and the unhandled type fails the way unregistered jobs do.
  const worker = startWorker({
    db: opened.db,
    dataDir,
    bus,
    pollMs: 20,
    log: () => {},
    types: ["toy-train", UNHANDLED_TYPE],
  });
  const app = await createServerApp(
    createApp({ db: opened.db, dataDir, token: TOKEN, bus, dbKind: opened.kind }),
  );
  const abort = new AbortController();
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", signal: abort.signal, onListen() {} },
    app.fetch,
  );
  const base = `http://127.0.0.1:${server.addr.port}`;
  return { dataDir, opened, bus, worker, abort, server, base };
}

/** Headless Chromium with a fresh profile per run (playwright passes it as --user-data-dir). */
async function launchChromium(userDataDir: string) {
  return await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    viewport: { width: 1440, height: 900 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** Seeded results, a tiny ladder of checkpoints, and old jobs for the jobs list. */
async function seedLab(db: LabDb, dataDir: string) {
  const seeded = await seedResults(db);
  const pairwiseId = await seedPairwiseResult(db);
  await writeTinyLadder(dataDir);
  // Old finished jobs beyond one page of the jobs list (200 rows), for "Load more".
  await db.insert(jobsTable).values(
    Array.from(
      { length: 205 },
      (_, i) => ({ type: "toy-train", status: "cancelled", params: { old: i } }),
    ),
  );
  return { ...seeded, pairwiseId };
}

/** The browser's page, with its console errors and uncaught exceptions collected into `consoleErrors`. */
async function openPage(context: BrowserContext, base: string, consoleErrors: string[]): Promise<Ui> {
  const page = context.pages()[0] ?? await context.newPage();
  page.on("console", (msg) => {
    if (msg.type() === "error") consoleErrors.push(`${page.url()}: ${msg.text()}`);
  });
  page.on("pageerror", (err) => consoleErrors.push(`${page.url()}: ${err.message}`));
  // From the top, so the sticky header does not land in the middle of a full-page shot.
  const shot = async (name: string) => {
    await page.evaluate(() => scrollTo(0, 0));
    await page.screenshot({ path: `${ARTIFACTS}/${name}.png`, fullPage: true });
  };
  return { page, base, shot };
}

/** The token arrives through the address (#token=…), is stored, leaves the address bar, and the server
 * accepts it (Settings checks it with GET /api/auth). */
async function checkSignInLink({ page, base, shot }: Ui) {
  await page.goto(`${base}/settings#token=${TOKEN}`);
  await page.waitForSelector("text=Database: pglite");
  assert.equal(await page.evaluate(() => localStorage.getItem("lab.token")), TOKEN);
  assert.equal(new URL(page.url()).hash, "");
  await page.waitForSelector("text=Token accepted.");
  await shot("settings");
}

/** Results (deep link with a query): figure 3 draws the ceiling (#111111) and the first weak line. */
async function checkResultsPage({ page, base, shot }: Ui) {
  await page.goto(`${base}/results?task=world-region`);
  await page.waitForSelector("[data-testid=fig3] canvas");
  assert.ok(
    await colouredPixels(page, "[data-testid=fig3] canvas", "#111111") > 50,
    "ceiling line drawn",
  );
  assert.ok(
    await colouredPixels(page, "[data-testid=fig3] canvas", "#1f77b4") > 50,
    "weak-nano line drawn",
  );
  // One summary rule: the API's numbers are what `lab sweep` computes from the same experiments
  // (summarizeResults), and the page shows the API's numbers (median, interval, pairs used, left out).
  const stored = await (await fetch(`${base}/api/results?limit=1000`)).json() as { full: ExperimentResult }[];
  const cli = summarizeResults(stored.map((r) => r.full));
  const api = await (await fetch(`${base}/api/results/summary`)).json() as ResultsSummary;
  assert.deepEqual(api.medians, JSON.parse(JSON.stringify(cli.medians)));
  const medianTable = await page.textContent("[data-testid=median-pgr]");
  for (const m of api.medians) {
    const interval = `\\[${m.median_ci.lo!.toFixed(2)}, ${m.median_ci.hi!.toFixed(2)}\\]`;
    assert.match(
      medianTable!,
      new RegExp(
        `${m.task ?? "all tasks"}\\s*${m.method}\\s*${
          m.median_pgr.toFixed(3)
        }\\s*${interval}\\s*${m.cells}\\s*${m.skipped}`,
      ),
    );
  }
  assert.equal(
    api.medians.find((m) => m.task === null && m.method === "naive")!.median_pgr.toFixed(3),
    NAIVE_MEDIAN_PGR,
  );
  assert.equal(
    api.medians.find((m) => m.task === null && m.method === "auxconf")!.median_pgr.toFixed(3),
    AUXCONF_MEDIAN_PGR,
  );
  assert.equal(await page.locator("[data-testid=pgr-bars] .bar").count(), 6);
  assert.equal(
    await page.locator("[data-testid=pairwise-note]").count(),
    0,
    "world-region is classification",
  );
  await shot("results");
}

/** The x axis in pretraining compute: 6 · params · tokens per size (from the ladder listing). */
async function checkComputeAxis({ page, base, shot }: Ui) {
  const ladder = await (await fetch(`${base}/api/models`)).json() as Array<
    { name: string; params: number; tokens: number }
  >;
  const computeOf = (size: string) => {
    const m = ladder.find((l) => l.name === size)!;
    return 6 * m.params * m.tokens;
  };
  await page.selectOption("[data-testid=fig3-axis]", "compute");
  await page.waitForURL(/[?&]x=compute/);
  await page.waitForSelector("[data-testid=fig3] >> text=pretraining compute");
  const summary = await page.textContent("[data-testid=fig3] .visually-hidden");
  assert.match(summary!, new RegExp(`weak nano: ${formatParams(computeOf("nano"))} 0\\.600, `));
  assert.ok(summary!.includes(`${formatParams(computeOf("small"))} `), summary!);
  assert.ok(
    await colouredPixels(page, "[data-testid=fig3] canvas", "#111111") > 50,
    "ceiling drawn on the compute axis",
  );
  await shot("results-compute-axis");
}

/** The experiment page (deep link, as after a reload) holds the same views plus curves and saliency. */
async function checkExperimentPage({ page, base, shot }: Ui, experimentId: number, studentRunId: number) {
  await page.goto(`${base}/experiments/${experimentId}?run=${studentRunId}`);
  await page.waitForSelector("[data-testid=accuracy-chart] canvas");
  assert.match((await page.textContent("[data-testid=early-stop]"))!, new RegExp(EARLY_STOP_TEXT));
  // The pipeline's series names land on their charts: lr and α apart from the accuracies.
  await page.waitForSelector("[data-testid=schedule-lr] canvas");
  assert.equal(
    await page.locator("[data-testid=schedule-alpha]").count(),
    0,
    "α = 0 throughout: not drawn",
  );
  assert.match(
    (await page.textContent("[data-testid=accuracy-chart]"))!,
    /test accuracy \(ground truth\).*validation agreement with the supervisor's labels|validation agreement with the supervisor's labels.*test accuracy \(ground truth\)/,
  );
  assert.doesNotMatch((await page.textContent("[data-testid=accuracy-chart]"))!, /\blr\b|alpha/);
  assert.ok(
    await colouredPixels(page, "[data-testid=saliency] canvas", "#ff7f0e") > 30,
    "lp(weak) drawn",
  );
  assert.equal(await page.locator("[data-testid=pairwise-note]").count(), 0, "classification results");
  await shot("experiment-detail");
}

/**
 * A pairwise result says once what its accuracies count, on its experiment page (where its table row is
 * marked pairwise and figure 3's axis says pairs) and on the Results and Agreement pages of its task.
 */
async function checkPairwiseResultPages({ page, base, shot }: Ui, pairwiseId: number) {
  await page.goto(`${base}/experiments/${pairwiseId}`);
  await page.waitForSelector("[data-testid=fig3] canvas");
  assert.equal(await page.locator("[data-testid=pairwise-note]").count(), 1);
  assert.match((await page.textContent("[data-testid=pairwise-note]"))!, PAIRWISE_NOTE);
  assert.match(
    (await page.textContent("[data-testid=results-table] tbody tr", { timeout: 5000 }))!,
    new RegExp(`#${pairwiseId}\\s*${PAIRWISE_TASK}\\s*pairwise\\s*nano\\s*small`),
  );
  assert.match(
    (await page.textContent("[data-testid=fig3]"))!,
    /^Pairwise test accuracy vs strong-model size/,
  );
  await shot("experiment-pairwise");
  await page.goto(`${base}/results?task=${PAIRWISE_TASK}`);
  await page.waitForSelector("[data-testid=pairwise-note]");
  assert.match((await page.textContent("[data-testid=pairwise-note]"))!, PAIRWISE_NOTE);
  assert.equal(
    await page.textContent(`select option[value="${PAIRWISE_TASK}"]`),
    `${PAIRWISE_TASK} — pairwise`,
  );
  await page.goto(`${base}/agreement?task=${PAIRWISE_TASK}`);
  await page.waitForSelector("[data-testid=agreement-naive] canvas");
  assert.equal(await page.locator("[data-testid=pairwise-note]").count(), 1);
}

async function checkAgreementPage({ page, base, shot }: Ui) {
  await page.goto(`${base}/agreement?task=world-region`);
  await page.waitForSelector("[data-testid=agreement-naive] canvas");
  assert.ok(await colouredPixels(page, "[data-testid=agreement-naive] canvas", "#2ca02c") > 30);
  await shot("agreement");
}

async function checkSaliencyPage({ page, base, shot }: Ui) {
  await page.goto(`${base}/saliency`);
  await page.waitForSelector("[data-testid=saliency] canvas");
  assert.ok(await colouredPixels(page, "[data-testid=saliency] canvas", "#1f77b4") > 30, "lp(gt) drawn");
  await shot("saliency");
}

async function checkModelsPage({ page, base, shot }: Ui) {
  await page.goto(`${base}/models`);
  await page.waitForSelector("[data-testid=pretrain-loss] canvas");
  assert.ok(await colouredPixels(page, "[data-testid=pretrain-loss] canvas", "#1f77b4") > 30);
  // A fresh data directory has no checkpoints: every size says so and offers to pretrain.
  assert.match(
    (await page.textContent("[data-testid=ladder] tbody tr"))!,
    /^nano.*not pretrained.*Pretrain$/,
  );
  await shot("models");
}

/** The World page: the default world's name, one tasks row per task of GET /api/world, no model yet. */
async function checkWorldPage({ page, base, shot }: Ui) {
  await page.goto(`${base}/world`);
  await page.waitForSelector("[data-testid=world-tasks]");
  assert.equal(await page.textContent("h1"), "World: default");
  const world = await (await fetch(`${base}/api/world`)).json() as WorldOverview;
  assert.equal(await page.locator("[data-testid=world-tasks] tbody tr").count(), world.tasks.length);
  const t = world.tasks[0];
  const { train1, train2, validation, test } = t.splits;
  assert.match(
    (await page.textContent(`[data-task="${t.name}"]`))!,
    new RegExp(
      `^${t.name}\\s*${t.difficulty}\\s*${t.type}\\s*${train1}\\s*${train2}\\s*${validation}\\s*${test}`,
    ),
  );
  await page.waitForSelector("#world-knowledge >> text=deno task lab pretrain --size nano");
  await shot("world");
}

async function checkKernelsPage({ page, base, shot }: Ui) {
  await page.goto(`${base}/kernels`);
  await page.waitForSelector("[data-testid=bench-table]");
  // matmul: v1 and v3 side by side, v3 (20 ms) marked fastest.
  assert.match(
    (await page.textContent("#kernel-matmul"))!,
    /512x512x512\s*300\.000\s*0\.9\s*1\.2\s*20\.000\s*13\.4/,
  );
  assert.equal(await page.textContent("#kernel-matmul td.best"), "20.000");
  await shot("kernels");
}

/** 205 old jobs: one page of 200 rows, then the rest on "Load more". */
async function checkJobListPaging({ page, base }: Ui) {
  await page.goto(`${base}/jobs`);
  await page.waitForSelector("[data-testid=job-list]");
  assert.equal(await page.locator("[data-testid=job-list] tbody tr").count(), 200);
  await page.click("text=Load more jobs");
  await page.waitForFunction(() =>
    document.querySelectorAll("[data-testid=job-list] tbody tr").length === 205
  );
  assert.equal(await page.locator("text=Load more jobs").count(), 0);
}

/** The demo job form: a bad value is refused beside its field, a good one starts a job and opens its page. */
async function submitDemoJobForm({ page, shot }: Ui) {
  await page.fill("#steps", "0");
  await page.click("[data-testid=toy-form] button[type=submit]");
  assert.equal(await page.textContent("[data-field=steps]"), "steps must be ≥ 1");
  await shot("jobs-form-error");
  await page.fill("#steps", "120");
  await page.fill("#stepDelayMs", "25");
  await page.click("[data-testid=toy-form] button[type=submit]");
  await page.waitForURL(/\/jobs\/\d+$/);
}

/** The job's page shows its progress and draws its curves while it runs, then its final loss. */
async function checkLiveProgress({ page, shot }: Ui) {
  const seen = new Set<number>();
  // Progress texts seen while the run's curves were already drawn and marked live.
  const liveChartPoints = new Set<string>();
  const deadline = Date.now() + 15_000;
  let status = "";
  while (Date.now() < deadline) {
    const bar = await page.$("[role=progressbar]");
    if (bar) seen.add(Number(await bar.getAttribute("aria-valuenow")));
    status = (await page.getAttribute(".job-progress", "data-status")) ?? "";
    if (status === "running" && await page.$("[data-live=yes] [data-testid=loss-chart] canvas")) {
      liveChartPoints.add(await page.locator("[data-testid=progress-text]").first().textContent() ?? "");
      if (liveChartPoints.size === 2) await shot("job-live");
    }
    if (status === "done") break;
    await page.waitForTimeout(150);
  }
  assert.equal(status, "done");
  const partial = [...seen].filter((v) => v > 0 && v < 100);
  assert.ok(partial.length >= 2, `progress seen live at several values, got ${[...seen].join(", ")}`);
  assert.ok(liveChartPoints.size >= 2, "the training curves were drawn while the job ran");
  await page.waitForSelector("[data-testid=accuracy-chart] canvas");
  assert.ok(
    await colouredPixels(page, "[data-testid=loss-chart] canvas", "#1f77b4") > 30,
    "toy loss drawn",
  );
  await shot("job-done");
}

async function checkTrainingCurvesPage({ page, base, shot }: Ui) {
  await page.goto(`${base}/runs`);
  await page.waitForSelector("[data-testid=loss-chart] canvas");
  await shot("training-curves");
}

/**
 * The form's defaults (one experiment: world-region, nano → small; a sweep: every world task over the
 * demo's sizes, naive, seeds 0, 1), and the demo's button: it starts the demo, whose progress shows in the
 * header and whose sweep joins the list (this test's worker leaves it queued); it is cancelled after.
 */
async function checkFormDefaultsAndDemoButton({ page, base, shot }: Ui) {
  await page.goto(`${base}/experiments`);
  await page.waitForSelector("[data-testid=experiment-form] select#task");
  const values = async (...ids: string[]) => await Promise.all(ids.map((id) => page.inputValue(id)));
  assert.deepEqual(await values("#task", "#weak", "#strong", "#seeds"), [
    "world-region",
    "nano",
    "small",
    "0",
  ]);
  assert.equal(await page.isDisabled("#promptingShots"), false, "a classification task may prompt");
  await page.click("text=Sweep (all pairs)");
  const checked = (group: string) =>
    page.$$eval(`#${group} input:checked`, (inputs) => inputs.map((i) => (i as HTMLInputElement).value));
  assert.deepEqual(await checked("tasks"), ["world"]);
  assert.deepEqual(
    await page.$$eval("#tasks label", (labels) => labels.slice(0, 2).map((l) => l.textContent)),
    [
      "world — every classification task of the lab's world",
      "world-pairwise — every preference task of the lab's world",
    ],
  );
  assert.equal(
    await page.textContent(`#tasks label:has(input[value="${PAIRWISE_TASK}"])`),
    `${PAIRWISE_TASK} — pairwise`,
  );
  assert.deepEqual(await checked("sizes"), ["nano", "micro", "mini", "small"]);
  assert.deepEqual(await checked("methods"), ["naive"]);
  assert.deepEqual(await values("#seeds", "#embeddings"), ["0, 1", ""], "seeds 0, 1; the recipe left unset");
  await page.click("[data-testid=demo-header] button:has-text('Run the demo (about 25 minutes on 2 cores)')");
  const progress = "[data-testid=demo-header] .job-progress";
  await page.waitForSelector(`${progress}[data-status=queued]`);
  await page.waitForSelector("[data-kind=sweep] >> text=demo");
  await shot("experiments-demo-queued");
  const jobId = await page.getAttribute(progress, "data-job-id");
  const cancelled = await fetch(`${base}/api/jobs/${jobId}/cancel`, {
    method: "POST",
    headers: { Authorization: `Bearer ${TOKEN}` },
  });
  assert.equal(cancelled.status, 200);
  await cancelled.body?.cancel();
  await page.waitForSelector(`${progress}[data-status=cancelled]`);
}

/** The experiment form: schema errors beside the fields, then a valid start; returns the new experiment's id. */
async function submitExperimentForm({ page, base, shot }: Ui, experimentId: number): Promise<number> {
  await page.goto(`${base}/experiments`);
  await page.waitForSelector("[data-testid=experiment-form] select#task");
  await page.fill("#seeds", "-1");
  await page.selectOption("#weak", "small");
  await page.selectOption("#strong", "nano");
  await page.click("[data-testid=experiment-form] button[type=submit]");
  assert.equal(await page.textContent("[data-field=seeds]"), "seed must be ≥ 0");
  assert.match((await page.textContent("[data-field=strong]"))!, /weak model must be smaller/);
  await shot("experiments-form-errors");
  await page.fill("#seeds", "0");
  await page.selectOption("#weak", "nano");
  await page.selectOption("#strong", "small");
  // Prompting baselines typed for a classification task stay home once a pairwise task is chosen.
  await page.fill("#promptingShots", "2");
  await page.selectOption("#task", PAIRWISE_TASK);
  assert.equal(
    await page.textContent(`#task option[value="${PAIRWISE_TASK}"]`),
    `${PAIRWISE_TASK} — pairwise`,
  );
  assert.ok(await page.isDisabled("#promptingShots"), "prompting baselines off for a pairwise task");
  assert.match((await page.textContent("#promptingShots-hint"))!, /not for a pairwise task/);
  await shot("experiments-form-pairwise");
  await page.click("[data-testid=experiment-form] button[type=submit]");
  await page.waitForURL(/\/experiments\/\d+$/);
  const newId = Number(new URL(page.url()).pathname.split("/").pop());
  assert.ok(newId > experimentId);
  const created = await (await fetch(`${base}/api/experiments/${newId}`)).json();
  assert.equal(created.config.task, PAIRWISE_TASK);
  assert.equal(created.config.promptingShots, undefined, "promptingShots not sent for a pairwise task");
  return newId;
}

/** It is queued (this test's worker leaves experiments alone); cancel it, then delete it. */
async function cancelAndDeleteExperiment({ page, base, shot }: Ui, newId: number) {
  await page.waitForSelector(".job-progress[data-status=queued]");
  await shot("experiment-started");
  await page.click(`button[aria-label="Cancel experiment ${newId}"]`);
  await page.waitForSelector(".job-progress[data-status=cancelled]");
  await page.goto(`${base}/experiments`);
  await page.waitForSelector(`[data-experiment-id="${newId}"] .job-progress[data-status=cancelled]`);
  await shot("experiments");
  await page.click(`button[aria-label="Delete experiment ${newId}"]`);
  await page.click(`button:has-text("Delete experiment ${newId}")`);
  await page.waitForSelector(`[data-experiment-id="${newId}"]`, { state: "detached" });
}

/** Import a task from a file: a bad line is named and quoted; the good file is imported and listed. */
async function importTaskFile({ page, base, shot }: Ui, consoleErrors: string[]) {
  await page.goto(`${base}/tasks`);
  await page.waitForSelector("[data-testid=task-list]");
  const goodTask = colourTaskJsonl(60);
  const badTask = goodTask.split("\n").map((l, i) =>
    i === 2 ? '{"txt": "the red stone", "hard_label": 2}' : l
  )
    .join("\n");
  const upload = (text: string) =>
    page.setInputFiles("#file", {
      name: "Colour Words.jsonl",
      mimeType: "application/x-ndjson",
      buffer: Buffer.from(text),
    });
  await upload(badTask);
  // The name is derived from the file name when the change event has been handled: wait for it.
  await page.waitForFunction(
    () => (document.querySelector("#task-name") as HTMLInputElement | null)?.value === "colour-words",
    undefined,
    { timeout: 5000 },
  ).catch(() => {});
  assert.equal(await page.inputValue("#task-name"), "colour-words");
  await page.click("[data-testid=import-form] button[type=submit]");
  const importError = await page.waitForSelector("[data-testid=import-error]");
  assert.match((await importError.textContent())!, /line 3: `hard_label` must be 0 or 1, got number 2/);
  assert.match((await importError.textContent())!, /3 \{"txt": "the red stone", "hard_label": 2\}/);
  // The browser logs the refused upload (HTTP 400) as a console error, which may reach us a little
  // after the page shows the error: expected here, and only here.
  const refused = /\/tasks: Failed to load resource: .* 400/;
  for (let i = 0; i < 40 && !consoleErrors.some((e) => refused.test(e)); i++) {
    await page.waitForTimeout(50);
  }
  const refusedAt = consoleErrors.findIndex((e) => refused.test(e));
  assert.ok(refusedAt >= 0, `the refused upload was logged: ${consoleErrors.join("; ")}`);
  consoleErrors.splice(refusedAt, 1);
  await shot("tasks-import-error");
  await upload(goodTask);
  await page.click("[data-testid=import-form] button[type=submit]");
  await page.waitForSelector('text=Imported "colour-words" (classification) with 60 examples.');
  await page.waitForSelector('[data-task="colour-words"]');
  assert.match(
    (await page.textContent('[data-task="colour-words"]'))!,
    /^colour-words\s*imported\s*classification\s*60 examples/,
  );
  await shot("tasks");
}

/** 24 comparisons in the Anthropic HH / TRL format: a prompt, the preferred and the other completion. */
function comparisonJsonl(count: number): string {
  return Array.from(
    { length: count },
    (_, i) =>
      JSON.stringify({ prompt: `Q: what is ${i} plus one? A:`, chosen: ` ${i + 1}`, rejected: ` ${i + 2}` }),
  ).join("\n");
}

/**
 * The tasks list gives each task's format: a world preference task is pairwise, counted in comparisons
 * (as many as GET /api/tasks lists), a world classification task is not; a comparison file imports as a
 * pairwise task; the import panel shows an example line of each format.
 */
async function checkPairwiseTasks({ page, base, shot }: Ui) {
  await page.goto(`${base}/tasks`);
  await page.waitForSelector(`[data-task="${PAIRWISE_TASK}"]`);
  const listed = await (await fetch(`${base}/api/tasks`)).json() as Array<
    { name: string; exampleCount: number }
  >;
  const countOf = (name: string) => listed.find((t) => t.name === name)!.exampleCount;
  assert.match(
    (await page.textContent(`[data-task="${PAIRWISE_TASK}"]`))!,
    new RegExp(`^${PAIRWISE_TASK}\\s*built in\\s*pairwise\\s*${countOf(PAIRWISE_TASK)} comparisons`),
  );
  assert.match(
    (await page.textContent('[data-task="world-region"]'))!,
    new RegExp(`^world-region\\s*built in\\s*classification\\s*${countOf("world-region")} examples`),
  );
  const formats = (await page.textContent("[data-testid=import-formats]"))!;
  assert.ok(formats.includes('{"txt": '), formats);
  assert.ok(formats.includes('{"prompt": '), formats);
  await page.setInputFiles("#file", {
    name: "Plus One.jsonl",
    mimeType: "application/x-ndjson",
    buffer: Buffer.from(comparisonJsonl(24)),
  });
  await page.waitForFunction(
    () => (document.querySelector("#task-name") as HTMLInputElement | null)?.value === "plus-one",
    undefined,
    { timeout: 5000 },
  );
  await page.click("[data-testid=import-form] button[type=submit]");
  await page.waitForSelector('text=Imported "plus-one" (pairwise) with 24 comparisons.');
  await page.waitForSelector('[data-task="plus-one"]');
  assert.match(
    (await page.textContent('[data-task="plus-one"]'))!,
    /^plus-one\s*imported\s*pairwise\s*24 comparisons/,
  );
  await shot("tasks-pairwise");
}

/** One real w2s job from the form: tiny nano → micro checkpoints, the imported task, probe student. */
async function submitRealW2sExperiment({ page, base }: Ui): Promise<number> {
  await page.goto(`${base}/experiments`);
  await page.waitForSelector("[data-testid=experiment-form] select#task");
  await page.selectOption("#task", "colour-words");
  await page.selectOption("#weak", "nano");
  await page.selectOption("#strong", "micro");
  await page.selectOption("#studentMode", "probe");
  await page.fill("#epochs", "2");
  await page.fill("#seeds", "0");
  await page.click("[data-testid=experiment-form] button[type=submit]");
  await page.waitForURL(/\/experiments\/\d+$/);
  return Number(new URL(page.url()).pathname.split("/").pop());
}

/** The real job finishes; its runs used the probe mode and its result row shows on the experiment page. */
async function checkRealW2sResult({ page, base, shot }: Ui, realId: number) {
  // A real training job beside the other test files on two cores: wait for its end, whichever it is.
  const ended = ".job-progress[data-status=done], .job-progress[data-status=failed]";
  await page.waitForSelector(ended, { timeout: 120_000 });
  if (await page.$(".job-progress[data-status=failed]")) {
    const failed = await (await fetch(`${base}/api/experiments/${realId}`)).json();
    assert.fail(`the real w2s job failed: ${JSON.stringify(failed.job ?? failed).slice(0, 500)}`);
  }
  await page.waitForSelector("[data-testid=results-table]", { state: "attached" });
  const real = await (await fetch(`${base}/api/experiments/${realId}`)).json();
  assert.equal(real.config.studentMode, "probe");
  assert.deepEqual(
    real.runs.map((r: { role: string; config: { mode: string } }) => `${r.role}:${r.config.mode}`),
    ["weak:finetune", "ceiling:probe", "student:probe"],
    "the probe mode reached the pipeline (the weak model is always finetuned)",
  );
  assert.equal(real.results.length, 1);
  const row = real.results[0];
  // 60 examples, 30 per label, split 30/30/15/25 % per label: 7.5 → 8 test examples per label, 16 in all;
  // every accuracy is a count out of them.
  assert.equal(row.full.n.test, 16);
  for (const acc of [row.weakAcc, row.ceilingAcc, row.studentAcc]) {
    assert.ok(Math.abs(acc * 16 - Math.round(acc * 16)) < 1e-9, `accuracy ${acc} is k/16`);
  }
  const shown = await page.textContent("[data-testid=results-table] tbody tr");
  assert.match(
    shown!,
    new RegExp(
      `#${realId}\\s*colour-words\\s*nano\\s*micro\\s*naive\\s*0\\s*${row.weakAcc.toFixed(3)} @\\d+\\s*` +
        `${row.ceilingAcc.toFixed(3)} @\\d+\\s*${row.studentAcc.toFixed(3)} @\\d+`,
    ),
  );
  await page.waitForSelector("[data-testid=fig3] canvas");
  await shot("experiment-real-job");
}

/** A job whose type has no handler fails; the queue shows its error where the job is listed. */
async function checkFailedJobListed({ page, base, shot }: Ui, db: LabDb, bus: EventBus) {
  const failing = await enqueueJob(db, UNHANDLED_TYPE, {}, { bus });
  await page.goto(`${base}/jobs`);
  const errorText = await page.textContent(`[data-job-row="${failing.id}"] .job-error`);
  assert.match(errorText!, new RegExp(`no handler is registered for job type "${UNHANDLED_TYPE}"`));
  await shot("jobs");
}

async function checkNotFoundPage({ page, base }: Ui) {
  await page.goto(`${base}/no/such/page`);
  await page.waitForSelector("text=Page not found");
}

Deno.test({
  name: "dashboard: pages, charts, forms and live progress in headless Chromium",
  ignore: !haveChromium && !requireAll,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    assert.ok(haveChromium, `REQUIRE_ALL=1 but no Chromium at ${CHROMIUM} (apt-get install -y chromium)`);
    await buildDashboard({ quiet: true });
    await Deno.mkdir(ARTIFACTS, { recursive: true });
    const { dataDir, opened, bus, worker, abort, server, base } = await startLab();
    const userDataDir = await Deno.makeTempDir({ prefix: "lab-chromium-" });
    const context = await launchChromium(userDataDir);
    const consoleErrors: string[] = [];
    let w2sWorker: ReturnType<typeof startWorker> | undefined;
    try {
      const { experimentId, studentRunId, pairwiseId } = await seedLab(opened.db, dataDir);
      const ui = await openPage(context, base, consoleErrors);
      await checkSignInLink(ui);
      await checkResultsPage(ui);
      await checkComputeAxis(ui);
      await checkExperimentPage(ui, experimentId, studentRunId);
      await checkPairwiseResultPages(ui, pairwiseId);
      await checkAgreementPage(ui);
      await checkSaliencyPage(ui);
      await checkModelsPage(ui);
      await checkWorldPage(ui);
      await checkKernelsPage(ui);
      await checkJobListPaging(ui);
      await submitDemoJobForm(ui);
      await checkLiveProgress(ui);
      await checkTrainingCurvesPage(ui);
      await checkFormDefaultsAndDemoButton(ui);
      const newId = await submitExperimentForm(ui, experimentId);
      await cancelAndDeleteExperiment(ui, newId);
      await importTaskFile(ui, consoleErrors);
      await checkPairwiseTasks(ui);
      w2sWorker = startWorker({ db: opened.db, dataDir, bus, pollMs: 20, log: () => {}, types: ["w2s"] });
      await checkRealW2sResult(ui, await submitRealW2sExperiment(ui));
      await checkFailedJobListed(ui, opened.db, bus);
      await checkNotFoundPage(ui);
      assert.deepEqual(consoleErrors, []);
    } finally {
      await context.close();
      abort.abort();
      await server.finished.catch(() => {});
      await worker.stop();
      await w2sWorker?.stop();
      await opened.close();
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
      await Deno.remove(userDataDir, { recursive: true }).catch(() => {});
    }
  },
});
