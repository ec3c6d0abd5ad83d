/**
 * Compare runs end to end in headless Chromium against the real lab app: the runs table names each run by
 * what it is, sorts and filters; two selected runs are overlaid on one chart; smoothing and the group mean
 * reach the exported data; the PNG, SVG and CSV downloads hold the figure (CSV values and PNG pixels checked
 * against the seeded curves by hand); the config diff highlights exactly the keys that differ; and the page
 * fits a 390 px phone. Screenshots (1440×900, 390×844) go to $TEST_ARTIFACTS or /tmp/lab-screenshots.
 * Without Chromium the test is skipped, unless REQUIRE_ALL=1.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { Page } from "playwright-core";
import type { LabDb } from "../db/client.ts";
import { experiments, metrics, runs } from "../db/schema.ts";
import { METRIC_SERIES } from "../server/contract/series.ts";
import { ARTIFACTS, dashboardTest } from "./e2e/lab.ts";

const NAIVE = "student · naive · seed 0 · nano→micro";
const AUXCONF = "student · auxconf · seed 1 · nano→micro";
const WEAK = "weak · seed 0 · nano in nano→micro";
const NAIVE_ACC = [[0, 0.5], [10, 0.6], [20, 0.7], [30, 0.8]];
const AUXCONF_ACC = [[0, 0.5], [10, 0.7], [20, 0.9], [30, 0.85]];

/** Two single experiments (naive seed 0, auxconf seed 1) with a student each, and the first one's weak run. */
async function seedRuns(db: LabDb) {
  const student = async (method: string, seed: number, lr: number, curve: number[][]) => {
    const [experiment] = await db.insert(experiments).values({
      kind: "experiment",
      status: "done",
      config: { task: "world-region", weak: "nano", strong: "micro", method, seed },
    }).returning();
    const [run] = await db.insert(runs).values({
      experimentId: experiment.id,
      role: "student",
      modelSize: "micro",
      status: "done",
      seconds: 60,
      config: {
        description: `train2 labels of nano (${method})`,
        validation: "supervisor labels",
        hyper: { lr, batchSize: 8, epochs: 2, seed: seed * 1000 + 4 },
        final: { step: 30, testAcc: curve[3][1], valAcc: 0.75 },
      },
    }).returning();
    await db.insert(metrics).values(
      curve.map(([step, value]) => ({ runId: run.id, name: METRIC_SERIES.testAcc, step, value })),
    );
    return experiment.id;
  };
  const naiveExperiment = await student("naive", 0, 1e-4, NAIVE_ACC);
  await student("auxconf", 1, 3e-4, AUXCONF_ACC);
  await db.insert(runs).values({
    experimentId: naiveExperiment,
    role: "weak",
    modelSize: "nano",
    status: "done",
    config: { final: { step: 30, testAcc: 0.6, valAcc: 0.6 } },
  });
}

const runNames = (page: Page) =>
  page.$$eval(
    "[data-testid=runs-table] tbody tr[data-run-id] td:nth-child(3)",
    (cells) => cells.map((c) => c.textContent!.trim()),
  );

/** Clicks a button and returns what the download it starts holds. */
async function downloadOf(page: Page, button: string): Promise<Uint8Array> {
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.click(`button:has-text("${button}")`),
  ]);
  return await Deno.readFile((await download.path())!);
}

const csvRows = (bytes: Uint8Array) =>
  new TextDecoder().decode(bytes).trim().split("\n").map((l) => l.split(","));

async function checkTable(page: Page, base: string) {
  await page.goto(`${base}/compare`);
  await page.waitForSelector("[data-testid=runs-table]");
  assert.deepEqual(new Set(await runNames(page)), new Set([NAIVE, AUXCONF, WEAK]));
  // First click sorts descending, the second ascending (the API sorts).
  await page.click("th button:has-text('Test acc (final)')");
  await page.waitForFunction(() => document.querySelector("th[aria-sort=descending]"));
  await page.waitForFunction(
    (first) => document.querySelector("tbody tr[data-run-id] td:nth-child(3)")?.textContent === first,
    AUXCONF,
  );
  assert.deepEqual(await runNames(page), [AUXCONF, NAIVE, WEAK]);
  await page.click("th button:has-text('Test acc (final)')");
  await page.waitForFunction(
    (first) => document.querySelector("tbody tr[data-run-id] td:nth-child(3)")?.textContent === first,
    WEAK,
  );
  assert.deepEqual(await runNames(page), [WEAK, NAIVE, AUXCONF]);
  await page.selectOption("select[data-filter=method]", "auxconf");
  await page.waitForFunction(() => document.querySelectorAll("tbody tr[data-run-id]").length === 1);
  assert.deepEqual(await runNames(page), [AUXCONF]);
  await page.selectOption("select[data-filter=method]", "");
  await page.fill("input[type=search]", "WEAK ·");
  await page.waitForFunction(() => document.querySelectorAll("tbody tr[data-run-id]").length === 1);
  assert.deepEqual(await runNames(page), [WEAK]);
  await page.fill("input[type=search]", "");
  await page.waitForFunction(() => document.querySelectorAll("tbody tr[data-run-id]").length === 3);
  await page.selectOption("[data-testid=group-by]", "method");
  assert.deepEqual(
    await page.$$eval("tr.group-row th", (ths) => ths.map((t) => t.textContent)),
    ["method = — · 1 run", "method = naive · 1 run", "method = auxconf · 1 run"],
  );
  await page.selectOption("[data-testid=group-by]", "");
}

async function checkOverlayAndExports(page: Page) {
  await page.check(`input[aria-label="Select ${NAIVE}"]`);
  await page.check(`input[aria-label="Select ${AUXCONF}"]`);
  await page.waitForSelector(`[data-testid=overlay-chart] polyline[data-label="${AUXCONF}"]`);
  const pointCounts = await page.$$eval(
    "[data-testid=overlay-chart] polyline[data-label]",
    (lines) => lines.map((l) => l.getAttribute("points")!.split(" ").length),
  );
  assert.deepEqual(pointCounts, [4, 4]);

  const csv = csvRows(await downloadOf(page, "Export CSV"));
  assert.deepEqual(csv[0], ["curve", "step", "value", "raw", "min", "max"]);
  assert.deepEqual(csv.slice(1), [
    ...NAIVE_ACC.map(([s, v]) => [NAIVE, String(s), String(v), String(v), "", ""]),
    ...AUXCONF_ACC.map(([s, v]) => [AUXCONF, String(s), String(v), String(v), "", ""]),
  ]);

  const svg = new TextDecoder().decode(await downloadOf(page, "Export SVG"));
  assert.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg" width="(\d+)" height="(\d+)"/);
  assert.equal(svg.match(/<polyline data-label=/g)?.length, 2);
  const [, width, height] = /width="(\d+)" height="(\d+)"/.exec(svg)!.map(Number);

  // The PNG is the figure at twice its size, and the first run's colour is drawn on it.
  const png = await downloadOf(page, "Export PNG");
  assert.deepEqual([...png.slice(1, 4)], [0x50, 0x4e, 0x47], "PNG signature");
  const view = new DataView(png.buffer, png.byteOffset);
  assert.deepEqual([view.getUint32(16), view.getUint32(20)], [2 * width, 2 * height]);
  const blue = await page.evaluate(async (b64) => {
    const image = new Image();
    image.src = `data:image/png;base64,${b64}`;
    await image.decode();
    const canvas = Object.assign(document.createElement("canvas"), {
      width: image.width,
      height: image.height,
    });
    const context = canvas.getContext("2d")!;
    context.drawImage(image, 0, 0);
    const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
    let count = 0;
    for (let i = 0; i < data.length; i += 4) {
      if (
        Math.abs(data[i] - 0x1f) < 24 && Math.abs(data[i + 1] - 0x77) < 24 &&
        Math.abs(data[i + 2] - 0xb4) < 24
      ) count++;
    }
    return count;
  }, Buffer.from(png).toString("base64"));
  assert.ok(blue > 500, `the first run's line is drawn on the PNG (${blue} pixels)`);
}

async function checkCurveControls(page: Page) {
  // Smoothing 0.5 over evaluations 10 steps apart: s₁ = (.5·.5·.5 + .5·.6)/(.5·.5 + .5) = .425/.75.
  await page.fill("input[aria-label='Smoothing (EMA weight)']", "0.5");
  await page.waitForSelector("[data-testid=overlay-chart] polyline[stroke-opacity='0.25']");
  const smoothed = csvRows(await downloadOf(page, "Export CSV"));
  assert.equal(smoothed[2][0], NAIVE);
  assert.ok(Math.abs(Number(smoothed[2][2]) - 0.425 / 0.75) < 1e-12, smoothed[2].join(","));
  assert.equal(smoothed[2][3], "0.6", "the raw value stays beside the smoothed one");
  await page.fill("input[aria-label='Smoothing (EMA weight)']", "0");
  // Examples seen: step × batch size 8.
  await page.selectOption(".curve-controls select >> nth=0", "examples");
  const examples = csvRows(await downloadOf(page, "Export CSV"));
  assert.deepEqual(examples[0].slice(0, 2), ["curve", "examples seen"]);
  assert.deepEqual(examples.slice(1, 5).map((r) => r[1]), ["0", "80", "160", "240"]);
  await page.selectOption(".curve-controls select >> nth=0", "step");
  // The two runs as one mean with its min–max band.
  await page.check("text=mean ± min–max per selection");
  await page.waitForSelector("[data-testid=overlay-chart] polygon");
  const grouped = csvRows(await downloadOf(page, "Export CSV"));
  const mean = String((0.6 + 0.7) / 2);
  assert.deepEqual(grouped[2], ["selected runs (mean of 2 · min–max)", "10", mean, mean, "0.6", "0.7"]);
  await page.uncheck("text=mean ± min–max per selection");
}

async function checkConfigDiff(page: Page) {
  await page.waitForSelector("[data-testid=config-diff]");
  const rows = await page.$$eval(
    "[data-testid=config-diff] tbody tr",
    (trs) =>
      trs.map((tr) => [tr.querySelector("th")!.textContent!, tr.classList.contains("differs")] as const),
  );
  const differing = rows.filter(([, d]) => d).map(([k]) => k).sort();
  assert.deepEqual(differing, ["description", "experiment", "hyper.lr", "hyper.seed", "method", "seed"]);
  for (const same of ["hyper.batchSize", "task", "weak", "strong", "role", "size", "validation"]) {
    assert.ok(rows.some(([k, d]) => k === same && !d), `${same} is listed and not highlighted`);
  }
}

dashboardTest(
  "compare runs: table, overlay of two runs, curve controls, PNG/SVG/CSV export, config diff",
  "compare-test-token",
  async (page, lab) => {
    await seedRuns(lab.db);
    await checkTable(page, lab.base);
    await checkOverlayAndExports(page);
    await checkCurveControls(page);
    await checkConfigDiff(page);
    await page.evaluate(() => scrollTo(0, 0));
    await page.screenshot({ path: `${ARTIFACTS}/compare-desktop.png`, fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForTimeout(200);
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    await page.screenshot({ path: `${ARTIFACTS}/compare-phone.png`, fullPage: true });
    assert.ok(wide <= 390, `the page is ${wide} px wide at 390 px`);
  },
);
