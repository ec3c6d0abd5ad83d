/**
 * What a new user of the dashboard trips on, end to end in headless Chromium against the real lab app:
 * an empty lab offers the demo once; deleting a task asks first, says what is lost, and keeps the focus
 * where a keyboard user can go on; a job's "ran on" names its adapter as a person reads it (the stored
 * name, ids and all, on hover); and the text each chart draws on its canvas (tick labels, the chance line's,
 * the checkpoint lines', the early-stopping points') never overlaps other text or leaves the canvas, on a
 * wide screen and a 390 px phone, over a crowded case: a student curve near chance with its checkpoints at
 * the right end, and students two decades apart in size. Screenshots go to $TEST_ARTIFACTS or
 * /tmp/lab-screenshots. Without Chromium the test is skipped, unless REQUIRE_ALL=1.
 */
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import type { LabDb } from "../db/client.ts";
import { experiments, jobs, metrics, results, runs } from "../db/schema.ts";
import { METRIC_SERIES } from "../server/contract/series.ts";
import { buildDashboard } from "../web/build.ts";
import { ARTIFACTS, chromiumTest, launchChromium, startLab } from "./e2e/lab.ts";

const TOKEN = "dashboard-details-token";
const DEMO_BUTTON = "button:has-text('Run the demo')";

/** An empty lab shows one "Run the demo": the empty list's; once there is an experiment, the header's. */
async function checkOneDemoButton(page: Page, base: string, db: LabDb) {
  await page.goto(`${base}/experiments`);
  await page.waitForSelector("text=No experiments yet.");
  assert.equal(await page.locator(DEMO_BUTTON).count(), 1, "one demo button on an empty lab");
  assert.equal(await page.locator(`[data-testid=demo-empty] ${DEMO_BUTTON}`).count(), 1);
  await page.screenshot({ path: `${ARTIFACTS}/details-experiments-empty.png`, fullPage: true });
  await db.insert(experiments).values({
    kind: "experiment",
    status: "cancelled",
    config: { task: "world-region", weak: "nano", strong: "micro", method: "naive", seed: 0 },
  });
  await page.reload();
  await page.waitForSelector("[data-testid=experiment-list]");
  assert.equal(await page.locator(DEMO_BUTTON).count(), 1, "one demo button beside a list");
  assert.equal(await page.locator(`[data-testid=demo-header] ${DEMO_BUTTON}`).count(), 1);
}

/** 24 lines of a classification task file. */
const TASK_JSONL = Array.from(
  { length: 24 },
  (_, i) => JSON.stringify({ txt: `item ${i}`, hard_label: i % 2 }),
)
  .join("\n");

/**
 * Delete on an imported task asks first (nothing is deleted yet), naming what goes and what stays; Cancel
 * and Escape give the focus back to Delete; "Yes, delete" deletes it and the message that says so gets the
 * focus.
 */
async function checkTaskDeleteAsksFirst(page: Page, base: string) {
  const imported = await fetch(`${base}/api/tasks/import?name=parity-words`, {
    method: "POST",
    headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/x-ndjson" },
    body: TASK_JSONL,
  });
  assert.equal(imported.status, 201, await imported.text());
  const listed = async () =>
    ((await (await fetch(`${base}/api/tasks`)).json()) as { name: string }[]).some((t) =>
      t.name === "parity-words"
    );
  await page.goto(`${base}/settings#token=${TOKEN}`);
  await page.waitForSelector("text=Token accepted.");
  await page.goto(`${base}/tasks`);
  const deleteButton = 'button[aria-label="Delete task parity-words"]';
  const activeLabel = () => page.evaluate(() => document.activeElement?.getAttribute("aria-label"));
  await page.click(deleteButton);
  const question = await page.waitForSelector("[data-testid=confirm]");
  assert.match(
    (await question.textContent())!,
    /^Delete task parity-words\? Its 24 examples go from the lab; the experiments, runs and results that used it stay\. Only importing its file again brings it back\./,
  );
  assert.ok(await listed(), "the first click deletes nothing");
  assert.equal(
    await page.evaluate(() => document.activeElement?.textContent),
    "Cancel",
    "focus on the safe answer",
  );
  await page.screenshot({ path: `${ARTIFACTS}/details-task-delete-asks.png`, fullPage: true });
  await page.keyboard.press("Escape");
  await page.waitForSelector("[data-testid=confirm]", { state: "detached" });
  await page.waitForFunction(() =>
    document.activeElement?.getAttribute("aria-label")?.startsWith("Delete task")
  );
  assert.equal(await activeLabel(), "Delete task parity-words", "Escape gives the focus back");
  await page.click(deleteButton);
  await page.click("[data-testid=confirm] button:has-text('Cancel')");
  await page.waitForFunction(() =>
    document.activeElement?.getAttribute("aria-label")?.startsWith("Delete task")
  );
  assert.ok(await listed(), "Cancel deletes nothing");
  await page.click(deleteButton);
  await page.click("[data-testid=confirm] button:has-text('Yes, delete')");
  await page.waitForSelector('[data-task="parity-words"]', { state: "detached" });
  assert.equal(await listed(), false);
  const note = "[data-testid=task-deleted]";
  assert.equal(await page.textContent(note), 'Deleted task "parity-words" and its 24 examples.');
  assert.equal(await page.evaluate((s) => document.activeElement === document.querySelector(s), note), true);
}

/** "ran on": the host and the adapter's name, without the ids the lab stores with it (those on hover). */
async function checkRanOn(page: Page, base: string, db: LabDb) {
  const at = (adapter: string) => ({ host: "lab-box", owner: "lab-box:41:c0ffee", adapter });
  const [cpu, gpu] = await db.insert(jobs).values([
    { type: "toy-train", status: "done", params: {}, ranOn: at("llvmpipe (LLVM 15.0.6, 256 bits) 65541 0") },
    { type: "toy-train", status: "done", params: {}, ranOn: at("NVIDIA H100 80GB HBM3 4318 8960") },
  ]).returning();
  await page.goto(`${base}/jobs`);
  const cell = (id: number) => `[data-job-row="${id}"] [data-testid=ran-on] span`;
  await page.waitForSelector(cell(gpu.id));
  assert.equal(await page.textContent(cell(cpu.id)), "lab-box · llvmpipe (CPU)");
  assert.equal(await page.textContent(cell(gpu.id)), "lab-box · NVIDIA H100 80GB HBM3");
  assert.equal(
    await page.getAttribute(cell(cpu.id), "title"),
    "host lab-box · worker lab-box:41:c0ffee · adapter llvmpipe (LLVM 15.0.6, 256 bits) 65541 0",
  );
  await page.goto(`${base}/jobs/${cpu.id}`);
  assert.equal(await page.textContent("dd[data-testid=ran-on]"), "lab-box · llvmpipe (CPU)");
}

const STUDENT_RECORD = {
  role: "student",
  size: "small",
  description: "train2 labels of nano (naive)",
  hyper: { seed: 3 },
  steps: 45,
  final: { step: 45, valAcc: 0.67, testAcc: 0.519 },
  selected: { step: 32, valAcc: 0.671, testAcc: 0.515 },
};

/** One stored result of nano → `strong` whose agreement is set; the small one records the student run. */
function crowdedResult(experimentId: number, strong: string) {
  const readings = { weak_acc: 0.53, ceiling_acc: 0.9, student_acc: 0.519, pgr: -0.03 };
  const agreement = { all: 0.6, supervisor_correct: 0.66, supervisor_wrong: 0.4 };
  return {
    experimentId,
    task: "world-region",
    weakSize: "nano",
    strongSize: strong,
    method: "naive",
    seed: 0,
    weakAcc: readings.weak_acc,
    ceilingAcc: readings.ceiling_acc,
    studentAcc: readings.student_acc,
    pgr: readings.pgr,
    gapTooSmall: false,
    agreement,
    full: {
      task: "world-region",
      weak: "nano",
      strong,
      method: "naive",
      seed: 0,
      n: { train1: 200, train2: 200, validation: 160, test: 200 },
      ...readings,
      agreement,
      final: { ...readings, steps: { weak: 40, ceiling: 40, student: 45 } },
      selected: { ...readings, steps: { weak: 40, ceiling: 40, student: 32 } },
      oracle: { ...readings, steps: { weak: 40, ceiling: 40, student: 12 }, student_step: 12 },
      chance: { rate: 0.5, noise: 0.07, near: { weak: true, ceiling: false, student: true } },
      warnings: [],
      runs: strong === "small" ? [STUDENT_RECORD] : [],
    },
  };
}

/**
 * The crowded case (as the demo's sweep gives it): a student whose test accuracy ends near chance, its best
 * and final points, and the checkpoints the results read (steps 32 and 45, the last at the right edge); and
 * students of nano→small and nano→large (two decades of parameters on one log axis). Its ids.
 */
async function seedCrowdedCharts(db: LabDb): Promise<{ experimentId: number; runId: number }> {
  const [experiment] = await db.insert(experiments).values({
    kind: "experiment",
    name: "crowded",
    status: "done",
    config: { task: "world-region", weak: "nano", strong: "small", method: "naive", seed: 0 },
  }).returning();
  await db.insert(results).values([
    crowdedResult(experiment.id, "small"),
    crowdedResult(experiment.id, "large"),
  ]);
  const [run] = await db.insert(runs).values({
    experimentId: experiment.id,
    role: "student",
    modelSize: "small",
    status: "done",
    config: STUDENT_RECORD,
  }).returning();
  const steps = [4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44, 45];
  const test = [0.507, 0.513, 0.537, 0.509, 0.511, 0.527, 0.51, 0.515, 0.518, 0.516, 0.517, 0.519];
  const val = [0.617, 0.523, 0.653, 0.664, 0.664, 0.657, 0.627, 0.671, 0.668, 0.67, 0.67, 0.67];
  await db.insert(metrics).values(steps.flatMap((step, i) => [
    { runId: run.id, name: METRIC_SERIES.testAcc, step, value: test[i] },
    { runId: run.id, name: METRIC_SERIES.valAgreement, step, value: val[i] },
    { runId: run.id, name: METRIC_SERIES.trainLoss, step, value: 0.69 - i / 1000 },
  ]));
  return { experimentId: experiment.id, runId: run.id };
}

/**
 * Records every text a 2D canvas fills (its glyphs' box on the canvas, from the context's measureText and
 * transform), since the canvas was last cleared whole: what a chart drew last. Rotated text (the y axis's
 * title) is left out.
 */
function recordCanvasText() {
  const drawn = new WeakMap<HTMLCanvasElement, { text: string; box: number[] }[]>();
  (globalThis as unknown as { canvasText: (c: HTMLCanvasElement) => unknown }).canvasText = (c) =>
    drawn.get(c) ?? [];
  const proto = CanvasRenderingContext2D.prototype;
  const clearRect = proto.clearRect;
  proto.clearRect = function (x: number, y: number, w: number, h: number) {
    if (x <= 0 && y <= 0 && w >= this.canvas.width && h >= this.canvas.height) drawn.set(this.canvas, []);
    clearRect.call(this, x, y, w, h);
  };
  const fillText = proto.fillText;
  proto.fillText = function (text: string, x: number, y: number, maxWidth?: number) {
    const t = this.getTransform();
    if (String(text).trim() !== "" && t.b === 0 && t.c === 0) {
      const m = this.measureText(text);
      const box = [
        t.a * (x - m.actualBoundingBoxLeft) + t.e,
        t.d * (y - m.actualBoundingBoxAscent) + t.f,
        t.a * (x + m.actualBoundingBoxRight) + t.e,
        t.d * (y + m.actualBoundingBoxDescent) + t.f,
      ];
      const list = drawn.get(this.canvas) ?? [];
      if (!list.some((d) => d.text === text && d.box.every((v, i) => Math.abs(v - box[i]) < 0.5))) {
        list.push({ text: String(text), box });
      }
      drawn.set(this.canvas, list);
    }
    maxWidth === undefined ? fillText.call(this, text, x, y) : fillText.call(this, text, x, y, maxWidth);
  };
}

/** Texts on each chart's canvas that overlap another text or reach past the canvas, in words. */
async function canvasTextClashes(page: Page): Promise<string[]> {
  return await page.$$eval("figure.chart", (figures) =>
    figures.flatMap((figure) => {
      const canvas = figure.querySelector("canvas");
      if (!canvas) return [];
      const name = figure.getAttribute("aria-label");
      const texts = (globalThis as unknown as {
        canvasText: (c: HTMLCanvasElement) => { text: string; box: number[] }[];
      }).canvasText(canvas);
      const clashes: string[] = [];
      // A pixel of slack: glyphs that touch are not over each other.
      const over = (a: number[], b: number[]) =>
        a[0] < b[2] - 1 && b[0] < a[2] - 1 && a[1] < b[3] - 1 && b[1] < a[3] - 1;
      texts.forEach((a, i) => {
        const [left, top, right, bottom] = a.box;
        if (left < -1 || top < -1 || right > canvas.width + 1 || bottom > canvas.height + 1) {
          clashes.push(`${name}: "${a.text}" leaves the canvas`);
        }
        for (const b of texts.slice(i + 1)) {
          if (over(a.box, b.box)) clashes.push(`${name}: "${a.text}" over "${b.text}"`);
        }
      });
      return clashes;
    }));
}

/** Every chart of the crowded experiment and the results pages, at 1400 and 390 px: no text over text. */
async function checkChartText(page: Page, base: string, ids: { experimentId: number; runId: number }) {
  const pages = [
    `/experiments/${ids.experimentId}?run=${ids.runId}`,
    `/runs/${ids.runId}`,
    "/results?task=world-region",
    "/results?task=world-region&x=compute",
    "/agreement?task=world-region",
  ];
  for (const width of [1400, 390]) {
    await page.setViewportSize({ width, height: 900 });
    for (const path of pages) {
      await page.goto(`${base}${path}`);
      await page.waitForSelector("figure.chart canvas");
      await page.waitForLoadState("networkidle");
      // The charts draw again once they have their width.
      await page.waitForTimeout(300);
      const drawn = await page.$$eval(
        "figure.chart canvas",
        (cs) =>
          cs.map((c) =>
            (globalThis as unknown as { canvasText: (c: Element) => unknown[] }).canvasText(c).length
          ),
      );
      assert.ok(drawn.length > 0 && drawn.every((n) => n > 0), `${path}: every chart drew its text`);
      assert.deepEqual(await canvasTextClashes(page), [], `${path} at ${width} px`);
      const name = path.split("/")[1].replace(/\?.*x=(\w+)|\?.*/, "$1");
      await page.screenshot({ path: `${ARTIFACTS}/details-charts-${name}-${width}.png`, fullPage: true });
    }
  }
  await page.setViewportSize({ width: 1440, height: 900 });
}

chromiumTest(
  "dashboard details: one demo button, delete asks first, readable adapters, chart text apart",
  async () => {
    await buildDashboard({ quiet: true });
    await Deno.mkdir(ARTIFACTS, { recursive: true });
    const lab = await startLab(TOKEN);
    const userDataDir = await Deno.makeTempDir({ prefix: "lab-chromium-" });
    const context = await launchChromium(userDataDir);
    try {
      await context.addInitScript(recordCanvasText);
      const page = context.pages()[0] ?? await context.newPage();
      const errors: string[] = [];
      page.on("pageerror", (err) => errors.push(err.message));
      await checkOneDemoButton(page, lab.base, lab.db);
      await checkTaskDeleteAsksFirst(page, lab.base);
      await checkRanOn(page, lab.base, lab.db);
      await checkChartText(page, lab.base, await seedCrowdedCharts(lab.db));
      assert.deepEqual(errors, []);
    } finally {
      await context.close();
      await lab.stop();
      await Deno.remove(userDataDir, { recursive: true }).catch(() => {});
    }
  },
  { sanitize: false },
);
