/**
 * A job's page at a sweep's scale, end to end in headless Chromium against the real lab app: a sweep job of
 * 120 runs (more than the API's default page of 100 and the table's first 50) lists its runs in a table
 * that says how many there are, its first 50 rows until "Show all", links to the sweep (whose page has the
 * curves with a run picker) and draws no curves; a w2s job of three runs draws each run's curves as before.
 * Both fit a 390 px phone. Screenshots go to $TEST_ARTIFACTS or /tmp/lab-screenshots. Without Chromium the
 * test is skipped, unless REQUIRE_ALL=1.
 */
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import type { LabDb } from "../db/client.ts";
import { experiments, jobs, metrics, runs } from "../db/schema.ts";
import { METRIC_SERIES } from "../server/contract/series.ts";
import { ARTIFACTS, dashboardTest } from "./e2e/lab.ts";

const ROLES = ["weak", "ceiling", "student"] as const;

/** A done job of `type` recording into a new experiment or sweep, with `count` runs; their ids. */
async function seedJob(db: LabDb, type: "sweep" | "w2s", count: number) {
  const [experiment] = await db.insert(experiments).values({
    kind: type === "sweep" ? "sweep" : "experiment",
    name: type === "sweep" ? "big sweep" : null,
    status: "done",
    config: { task: "world-region", weak: "nano", strong: "micro", method: "naive", seed: 0 },
  }).returning();
  const [job] = await db.insert(jobs).values({
    type,
    status: "done",
    params: { experimentId: experiment.id },
    attempts: 1,
  }).returning();
  const rows = await db.insert(runs).values(Array.from({ length: count }, (_, i) => ({
    experimentId: experiment.id,
    jobId: job.id,
    role: ROLES[i % 3],
    modelSize: ROLES[i % 3] === "weak" ? "nano" : "micro",
    task: "world-region",
    status: "done",
    seconds: 10 + i,
    config: { final: { step: 30, testAcc: 0.6 + i / 1000, valAcc: 0.6 } },
  }))).returning();
  await db.insert(metrics).values(
    rows.flatMap((r) =>
      [[0, 0.5], [10, 0.6], [20, 0.7]].map(([step, value]) => ({
        runId: r.id,
        name: METRIC_SERIES.testAcc,
        step,
        value,
      }))
    ),
  );
  return { jobId: job.id, experimentId: experiment.id, runIds: rows.map((r) => r.id) };
}

const tableRows = (page: Page) => page.locator("[data-testid=runs-table] tbody tr[data-run-id]").count();

/** The sweep job: "120 runs", 50 rows until "Show all", the sweep's link, no curves, a page of sane height. */
async function checkManyRuns(page: Page, base: string, sweep: Awaited<ReturnType<typeof seedJob>>) {
  await page.goto(`${base}/jobs/${sweep.jobId}`);
  await page.waitForSelector("[data-testid=runs-table]");
  assert.match((await page.textContent("[data-testid=job-runs]"))!, /^120 runs\b/);
  assert.equal(await tableRows(page), 50);
  assert.match((await page.textContent("[data-testid=show-all]"))!, /^50 of 120 runs/);
  const sweepLink = `#runs a[href="/sweeps/${sweep.experimentId}"]`;
  assert.equal(await page.locator(sweepLink).count(), 1, "the runs section links to the sweep's curves");
  assert.equal(await page.locator(".run-curves").count(), 0, "no curves drawn per run");
  // Each row names its run and links to its curves; the newest first.
  const newest = sweep.runIds[sweep.runIds.length - 1];
  const first = page.locator("[data-testid=runs-table] tbody tr[data-run-id]").first();
  assert.equal(await first.getAttribute("data-run-id"), String(newest));
  assert.equal(await first.locator(`a[href="/runs/${newest}"]`).count(), 1);
  assert.match((await first.textContent())!, new RegExp(`#${newest}.*student · micro.*world-region.*done`));
  const height = await page.evaluate(() => document.documentElement.scrollHeight);
  assert.ok(height < 5000, `the job page is ${height} px tall`);
  await page.screenshot({ path: `${ARTIFACTS}/job-many-runs.png`, fullPage: true });
  await page.click("button:has-text('Show all 120 runs')");
  await page.waitForFunction(() =>
    document.querySelectorAll("[data-testid=runs-table] tbody tr").length === 120
  );
  await page.click(sweepLink);
  await page.waitForURL(new RegExp(`/sweeps/${sweep.experimentId}$`));
  await page.waitForSelector(".run-picker");
}

/** The w2s job: its three runs' curves, one section each, and the link to its experiment. */
async function checkFewRuns(page: Page, base: string, w2s: Awaited<ReturnType<typeof seedJob>>) {
  await page.goto(`${base}/jobs/${w2s.jobId}`);
  await page.waitForFunction(() =>
    document.querySelectorAll(".run-curves [data-testid=accuracy-chart]").length === 3
  );
  for (const id of w2s.runIds) assert.equal(await page.locator(`section#run-${id} .run-curves`).count(), 1);
  assert.equal(await page.locator("[data-testid=runs-table]").count(), 0);
  assert.equal(await page.locator(`a[href="/experiments/${w2s.experimentId}"]`).count(), 1);
}

async function checkPhone(page: Page, base: string, jobIds: number[]) {
  await page.setViewportSize({ width: 390, height: 844 });
  for (const id of jobIds) {
    await page.goto(`${base}/jobs/${id}`);
    await page.waitForSelector("[data-testid=runs-table], .run-curves");
    await page.waitForTimeout(200);
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(wide <= 390, `job ${id} is ${wide} px wide at 390 px`);
    await page.screenshot({ path: `${ARTIFACTS}/job-${id}-phone.png`, fullPage: true });
  }
}

dashboardTest(
  "job page: a job of many runs lists them in a capped table with their true count and links to its sweep; a few runs draw their curves",
  "job-page-token",
  async (page, lab) => {
    const sweep = await seedJob(lab.db, "sweep", 120);
    const w2s = await seedJob(lab.db, "w2s", 3);
    await checkManyRuns(page, lab.base, sweep);
    await checkFewRuns(page, lab.base, w2s);
    await checkPhone(page, lab.base, [sweep.jobId, w2s.jobId]);
  },
);
