/**
 * The run lists at a sweep's scale, end to end in headless Chromium against the real lab app, over 60 runs
 * of two experiments: Compare runs shows the overlay above the table and the table's first 50 rows until
 * "Show all" (kept through a sort), and filters by weak and strong model; the Training curves picker and an
 * experiment's show the first 12 runs (6 on a phone), the current one always among them, with a search and a
 * role to pick, and an experiment's picks the task in its address; every run stays reachable and the pages
 * fit a 390 px phone. Screenshots go to $TEST_ARTIFACTS or
 * /tmp/lab-screenshots. Without Chromium the test is skipped, unless REQUIRE_ALL=1.
 */
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import type { LabDb } from "../db/client.ts";
import { experiments, metrics, runs } from "../db/schema.ts";
import { METRIC_SERIES } from "../server/contract/series.ts";
import { ARTIFACTS, dashboardTest } from "./e2e/lab.ts";

const ROLES = ["weak", "ceiling", "student"] as const;
const TASKS = ["world-region", "world-blood"] as const;

/**
 * Two experiments (nano→micro, micro→small) of 30 runs each, roles in turn weak, ceiling, student, tasks in
 * turn world-region and world-blood; the last run of each (a student) has a test-accuracy curve. Their ids,
 * in order.
 */
async function seedManyRuns(db: LabDb): Promise<{ experimentIds: number[]; runIds: number[] }> {
  const experimentIds: number[] = [], runIds: number[] = [];
  for (const [weak, strong] of [["nano", "micro"], ["micro", "small"]]) {
    const [experiment] = await db.insert(experiments).values({
      kind: "experiment",
      status: "done",
      config: { task: "world-region", weak, strong, method: "naive", seed: 0 },
    }).returning();
    experimentIds.push(experiment.id);
    const rows = await db.insert(runs).values(Array.from({ length: 30 }, (_, i) => ({
      experimentId: experiment.id,
      role: ROLES[i % 3],
      modelSize: ROLES[i % 3] === "weak" ? weak : strong,
      task: TASKS[i % 2],
      status: "done",
      seconds: 10 + i,
      config: { final: { step: 30, testAcc: 0.6 + i / 100, valAcc: 0.6 } },
    }))).returning();
    runIds.push(...rows.map((r) => r.id));
    await db.insert(metrics).values(
      [[0, 0.5], [10, 0.6], [20, 0.7]].map(([step, value]) => ({
        runId: rows[29].id,
        name: METRIC_SERIES.testAcc,
        step,
        value,
      })),
    );
  }
  return { experimentIds, runIds };
}

const tableRows = (page: Page) => page.locator("[data-testid=runs-table] tbody tr[data-run-id]").count();
const waitForRows = (page: Page, n: number) =>
  page.waitForFunction(
    (n) => document.querySelectorAll("[data-testid=runs-table] tbody tr[data-run-id]").length === n,
    n,
  );
const chips = (page: Page) =>
  page.$$eval(".run-picker a.chip", (as) => as.map((a) => a.textContent!.replace(/\s*done$/, "")));

/** Compare runs: 50 rows of 60 until "Show all", kept through a sort; the weak filter; the overlay on top. */
async function checkCompare(page: Page, base: string, runIds: number[]) {
  await page.goto(`${base}/compare`);
  await page.waitForSelector("[data-testid=runs-table]");
  assert.equal(await tableRows(page), 50);
  assert.match((await page.textContent("[data-testid=show-all]"))!, /^50 of 60 runs/);
  await page.click("button:has-text('Show all 60 runs')");
  await waitForRows(page, 60);
  // By name, descending: a weak run first (by id, the newest, a student, was).
  await page.click("th button:has-text('Run')");
  await page.waitForFunction(() =>
    document.querySelector("[data-testid=runs-table] tbody tr[data-run-id] td:nth-child(3)")?.textContent
      ?.startsWith("weak")
  );
  assert.equal(await tableRows(page), 60, "a sort keeps every row shown");
  await page.click("button:has-text('Show the first 50')");
  await waitForRows(page, 50);
  // Every run of micro→small (its weak model is micro): 30, no "Show all".
  await page.selectOption("select[data-filter=weak]", "micro");
  await waitForRows(page, 30);
  assert.equal(await page.locator("[data-testid=show-all]").count(), 0);
  await page.selectOption("select[data-filter=weak]", "");
  await page.selectOption("select[data-filter=strong]", "micro");
  await waitForRows(page, 30);
  await page.selectOption("select[data-filter=strong]", "");
  await waitForRows(page, 50);
  // The overlay of a selected run is drawn above the table.
  await page.click("button:has-text('Show all 60 runs')");
  const last = runIds[runIds.length - 1];
  await page.check(`tr[data-run-id="${last}"] input[type=checkbox]`);
  await page.waitForSelector("[data-testid=overlay-chart] polyline");
  const top = (selector: string) => page.$eval(selector, (el) => el.getBoundingClientRect().top);
  assert.ok(await top("[data-testid=overlay-chart]") < await top("[data-testid=runs-table]"));
  await page.evaluate(() => scrollTo(0, 0));
  await page.screenshot({ path: `${ARTIFACTS}/many-runs-compare.png`, fullPage: true });
}

/** Training curves: 12 chips of 60 (the newest run's shown), a role and a search to narrow, "Show all". */
async function checkCurvesPicker(page: Page, base: string, runIds: number[]) {
  await page.goto(`${base}/runs`);
  await page.waitForSelector("[data-testid=loss-chart], .run-curves");
  assert.equal((await chips(page)).length, 12);
  assert.match((await page.textContent("[data-testid=show-all]"))!, /^12 of 60 runs/);
  const newest = runIds[runIds.length - 1];
  assert.match(await page.textContent(".run-picker [aria-current=page]") ?? "", new RegExp(`^#${newest} `));
  // 20 ceilings: the first 12, and the current run (a student) before them.
  await page.selectOption("[data-testid=run-picker-filters] select[data-filter=role]", "ceiling");
  const ceilings = await chips(page);
  assert.equal(ceilings.length, 13);
  assert.match(ceilings[0], new RegExp(`^#${newest} student`));
  assert.ok(ceilings.slice(1).every((c) => / ceiling · /.test(c)), ceilings.join("; "));
  assert.match((await page.textContent("[data-testid=show-all]"))!, /^12 of 20 matching runs/);
  await page.selectOption("[data-testid=run-picker-filters] select[data-filter=role]", "");
  // Any run by its id: the oldest, far past the first page of chips.
  const oldest = runIds[0];
  await page.fill("[data-testid=run-picker-filters] input[type=search]", `#${oldest} weak`);
  await page.click(`.run-picker a.chip[href="/runs/${oldest}"]`);
  await page.waitForURL(new RegExp(`/runs/${oldest}$`));
  await page.waitForSelector(`.run-picker [aria-current=page][href="/runs/${oldest}"]`);
  await page.fill("[data-testid=run-picker-filters] input[type=search]", "");
  await page.click("button:has-text('Show all 60 runs')");
  assert.equal((await chips(page)).length, 60);
}

/** An experiment's picker: its 30 runs cut to 12, and ?run= of a later one shows that one first. */
async function checkExperimentPicker(page: Page, base: string, experimentId: number, runIds: number[]) {
  const late = runIds[29];
  await page.goto(`${base}/experiments/${experimentId}?run=${late}`);
  await page.waitForSelector(".run-picker [aria-current=page]");
  const shown = await chips(page);
  assert.equal(shown.length, 13);
  assert.match(shown[0], new RegExp(`^#${late} student`));
  assert.match(await page.textContent(".run-picker [aria-current=page]") ?? "", new RegExp(`^#${late} `));
  await page.waitForSelector(`.run-curves[data-run-id="${late}"]`);
  // A chip's link keeps the address's state: ?run= of the run picked.
  const href = `/experiments/${experimentId}?run=${runIds[1]}`;
  await page.click(`.run-picker a.chip[href="${href}"]`);
  await page.waitForURL(new RegExp(`/experiments/${experimentId}\\?run=${runIds[1]}$`));
  await page.waitForSelector(`.run-picker [aria-current=page][href="${href}"]`);
}

/** ?task= in an experiment's address picks the task its run list shows, and its chips' links keep it. */
async function checkExperimentTask(page: Page, base: string, experimentId: number, runIds: number[]) {
  const late = runIds[29]; // a world-blood run
  await page.goto(`${base}/experiments/${experimentId}?task=world-region&run=${late}`);
  await page.waitForSelector(".run-picker [aria-current=page]");
  const picked = "[data-testid=run-picker-filters] select[data-filter=task]";
  assert.equal(await page.$eval(picked, (s) => (s as HTMLSelectElement).value), "world-region");
  // 15 world-region runs, the first 12 shown, and the current run (of world-blood) before them.
  assert.match((await page.textContent("[data-testid=show-all]"))!, /^12 of 15 matching runs/);
  assert.equal((await chips(page)).length, 13);
  const href = `/experiments/${experimentId}?task=world-region&run=${runIds[0]}`;
  assert.equal(await page.locator(`.run-picker a.chip[href="${href}"]`).count(), 1);
}

/** Each page fits a 390 px phone; a run picker shows 6 runs there. */
async function checkPhone(page: Page, base: string, experimentId: number) {
  await page.setViewportSize({ width: 390, height: 844 });
  for (const path of ["/compare", "/runs", `/experiments/${experimentId}`]) {
    await page.goto(`${base}${path}`);
    await page.waitForSelector(".run-picker, [data-testid=runs-table]");
    await page.waitForTimeout(200);
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(wide <= 390, `${path} is ${wide} px wide at 390 px`);
  }
  assert.match((await page.textContent("[data-testid=show-all]"))!, /^6 of 30 runs/);
  assert.ok((await chips(page)).length <= 7);
  await page.screenshot({ path: `${ARTIFACTS}/many-runs-experiment-phone.png`, fullPage: true });
}

dashboardTest(
  "many runs: overlay above a capped, filterable runs table; run pickers cut to the current run and a search",
  "many-runs-token",
  async (page, lab) => {
    const { experimentIds, runIds } = await seedManyRuns(lab.db);
    await checkCompare(page, lab.base, runIds);
    await checkCurvesPicker(page, lab.base, runIds);
    await checkExperimentPicker(page, lab.base, experimentIds[0], runIds);
    await checkExperimentTask(page, lab.base, experimentIds[0], runIds);
    await checkPhone(page, lab.base, experimentIds[0]);
  },
);
