/**
 * What a new user of the dashboard trips on, end to end in headless Chromium against the real lab app:
 * an empty lab offers the demo once; deleting a task asks first, says what is lost, and keeps the focus
 * where a keyboard user can go on; a job's "ran on" names its adapter as a person reads it (the stored
 * name, ids and all, on hover); and the text each chart draws on its canvas (tick labels, the chance line's,
 * the checkpoint lines', the early-stopping points') never overlaps other text or leaves the canvas, on a
 * wide screen and a 390 px phone, over a crowded case: a student curve near chance with its checkpoints at
 * the right end, and students two decades apart in size; PGR vs the strong model's knowledge tells weak
 * models and methods apart and spans its points' recall; and a command on a phone wraps between words, never
 * inside a flag. Screenshots go to $TEST_ARTIFACTS or /tmp/lab-screenshots. Without Chromium the test is
 * skipped, unless REQUIRE_ALL=1.
 */
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import type { LabDb } from "../db/client.ts";
import { experiments, jobs, metrics, results, runs } from "../db/schema.ts";
import { METRIC_SERIES } from "../server/contract/series.ts";
import { ARTIFACTS, dashboardTest } from "./e2e/lab.ts";

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

/** An experiment's address with a sweep's id (they share ids) says what it is and links to it; a gap says gone. */
async function checkWrongKind(page: Page, base: string, db: LabDb) {
  const [sweep] = await db.insert(experiments).values({ kind: "sweep", name: "kinds", config: {} })
    .returning();
  await page.goto(`${base}/experiments/${sweep.id}`);
  await page.waitForSelector(`text=Experiment ${sweep.id} is a sweep.`);
  await page.click(`main a[href="/sweeps/${sweep.id}"]`);
  await page.waitForURL(new RegExp(`/sweeps/${sweep.id}$`));
  await page.waitForSelector(`h1:has-text("kinds")`);
  await page.goto(`${base}/sweeps/${sweep.id + 1000}`);
  await page.waitForSelector(`text=Sweep ${sweep.id + 1000} does not exist.`);
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
      // Chance is the test labels' majority rate (not always 0.5): the run's accuracy chart draws this one.
      chance: { rate: 0.52, noise: 0.07, near: { weak: true, ceiling: false, student: true } },
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
      if (path.startsWith("/experiments/") || path.startsWith("/runs/")) {
        // The run's chance line is its result's majority rate; on the run page alone no result is known.
        const texts = await page.$eval(
          "[data-testid=accuracy-chart] canvas",
          (c) => (globalThis as unknown as { canvasText: (c: Element) => { text: string }[] }).canvasText(c),
        );
        const chance = texts.map((t) => t.text).filter((t) => t.startsWith("chance"));
        assert.deepEqual(
          chance,
          path.startsWith("/experiments") ? ["chance 0.52"] : [],
          `${path}: ${chance}`,
        );
      }
      assert.deepEqual(await canvasTextClashes(page), [], `${path} at ${width} px`);
      const name = path.split("/")[1].replace(/\?.*x=(\w+)|\?.*/, "$1");
      await page.screenshot({ path: `${ARTIFACTS}/details-charts-${name}-${width}.png`, fullPage: true });
    }
  }
  await page.setViewportSize({ width: 1440, height: 900 });
}

/** A result on world-coast of weak → strong by `method` at `pgr`, its strong checkpoint's recall recorded. */
function knowledgeResult(
  experimentId: number,
  [weak, strong, method]: [string, string, string],
  pgr: number,
  recall: number,
) {
  const readings = { weak_acc: 0.6, ceiling_acc: 0.9, student_acc: 0.6 + pgr * 0.3, pgr };
  const agreement = { all: 0.8, supervisor_correct: 0.9, supervisor_wrong: 0.5 };
  return {
    experimentId,
    task: "world-coast",
    weakSize: weak,
    strongSize: strong,
    method,
    seed: 0,
    weakAcc: readings.weak_acc,
    ceilingAcc: readings.ceiling_acc,
    studentAcc: readings.student_acc,
    pgr,
    gapTooSmall: false,
    agreement,
    full: {
      task: "world-coast",
      weak,
      strong,
      method,
      seed: 0,
      n: { train1: 200, train2: 200, validation: 160, test: 200 },
      ...readings,
      agreement,
      oracle: { ...readings, student_step: 20 },
      strongKnowledge: recall,
      warnings: [],
    },
  };
}

/**
 * PGR vs the strong model's knowledge tells its series apart: colour is the weak model, the dash the method,
 * the legend names both; its x axis spans the points' recall (0.9–1 here, as in the demo), not 0–1; and
 * every point is drawn, the three that share the axis's right end too.
 */
async function checkKnowledgeChart(page: Page, base: string, db: LabDb) {
  const [experiment] = await db.insert(experiments).values({
    kind: "sweep",
    status: "done",
    config: { tasks: ["world-coast"], sizes: ["nano", "micro", "small"], methods: ["naive", "auxconf"] },
  }).returning();
  await db.insert(results).values([
    knowledgeResult(experiment.id, ["nano", "micro", "naive"], 0.2, 0.918),
    knowledgeResult(experiment.id, ["nano", "small", "naive"], 0.5, 1),
    knowledgeResult(experiment.id, ["nano", "small", "auxconf"], 0.7, 1),
    knowledgeResult(experiment.id, ["micro", "small", "naive"], 0.3, 1),
  ]);
  await page.setViewportSize({ width: 1400, height: 900 });
  await page.goto(`${base}/results?task=world-coast`);
  const chart = "[data-testid=pgr-vs-knowledge]";
  await page.waitForSelector(`${chart} canvas`);
  await page.waitForLoadState("networkidle");
  await page.waitForTimeout(300);
  const legend = await page.$$eval(`${chart} .u-legend .u-series`, (rows) =>
    rows.slice(1).map((row) => ({
      label: row.querySelector(".u-label")!.textContent,
      border: (row.querySelector(".u-marker") as HTMLElement).style.border,
    })));
  assert.deepEqual(legend.map((l) => l.label), [
    "weak nano · naive",
    "weak nano · auxconf",
    "weak micro · naive",
  ]);
  const colour = (border: string) => border.replace(/^.*(rgb\(.*\))$/, "$1");
  const [nanoNaive, nanoAuxconf, microNaive] = legend.map((l) => l.border);
  assert.equal(colour(nanoNaive), colour(nanoAuxconf), "one colour per weak model");
  assert.notEqual(colour(nanoNaive), colour(microNaive), "weak models apart by colour");
  assert.deepEqual(legend.map((l) => /dashed/.test(l.border)), [false, true, false], "auxconf dashed");
  assert.equal(
    await page.textContent("[data-testid=pgr-vs-knowledge-key]"),
    "Colour: the weak model, as on figure 3. The method: naive solid line, filled points; auxconf dashed line, " +
      "open points.",
  );
  // The x axis's tick labels: the numbers drawn below the plot area.
  const xTicks = await page.$eval(
    `${chart} canvas`,
    (canvas) =>
      (globalThis as unknown as { canvasText: (c: Element) => { text: string; box: number[] }[] })
        .canvasText(canvas).filter((t) => t.box[1] > canvas.clientHeight * devicePixelRatio * 0.75)
        .map((t) => Number(t.text)).filter((v) => Number.isFinite(v)),
  );
  assert.ok(xTicks.length >= 2, xTicks.join(", "));
  assert.ok(Math.min(...xTicks) >= 0.9 && Math.max(...xTicks) === 1, `x ticks ${xTicks.join(", ")}`);
  // micro · naive has one point, at recall 1 beside two others: drawn (micro's colour, PALETTE[1]).
  const orange = await page.$eval(`${chart} canvas`, (canvas) => {
    const c = canvas as HTMLCanvasElement;
    const data = c.getContext("2d")!.getImageData(0, 0, c.width, c.height).data;
    let count = 0;
    for (let i = 0; i < data.length; i += 4) {
      if (Math.abs(data[i] - 0xff) < 24 && Math.abs(data[i + 1] - 0x7f) < 24 && data[i + 2] < 40) count++;
    }
    return count;
  });
  assert.ok(orange > 10, `micro's point drawn (${orange} pixels)`);
  assert.deepEqual(await canvasTextClashes(page), []);
  await page.$eval("#pgr-knowledge", (el) => el.scrollIntoView());
  await page.screenshot({ path: `${ARTIFACTS}/details-pgr-vs-knowledge.png` });
}

/**
 * At 390 px a command wraps between its words, never inside one ("--⏎dir", "-⏎-ladder"), and the page is no
 * wider than the phone; "95 %" never splits either (a no-break space).
 */
async function checkNoSplitWords(page: Page, base: string) {
  await page.setViewportSize({ width: 390, height: 844 });
  for (const path of ["/models", "/tasks", "/world"]) {
    await page.goto(`${base}${path}`);
    await page.waitForSelector("code.cmd");
    await page.waitForLoadState("networkidle");
    const split = await page.$$eval("code.cmd", (codes) =>
      codes.flatMap((code) => {
        const words: string[] = [];
        const walker = document.createTreeWalker(code, NodeFilter.SHOW_TEXT);
        for (let node = walker.nextNode(); node; node = walker.nextNode()) {
          for (const m of node.textContent!.matchAll(/\S+/g)) {
            const range = document.createRange();
            range.setStart(node, m.index!);
            range.setEnd(node, m.index! + m[0].length);
            const lines = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
            if (lines.size > 1) words.push(m[0]);
          }
        }
        return words;
      }));
    assert.deepEqual(split, [], `${path}: words of a command split over lines`);
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(wide <= 390, `${path} is ${wide} px wide at 390 px`);
    if (path === "/models") {
      // The ladder's rows stack as cards, each value beside its column's name: nothing to scroll sideways.
      const [scrolled, shown] = await page.$eval("[data-testid=ladder]", (t) => [
        t.parentElement!.scrollWidth,
        t.parentElement!.clientWidth,
      ]);
      assert.ok(scrolled <= shown, `the ladder scrolls sideways at 390 px: ${scrolled} px in ${shown}`);
      const nano = await page.$eval("[data-testid=ladder] tbody td[data-label=width]", (td) => [
        getComputedStyle(td, "::before").content,
        (td as HTMLElement).innerText.trim(),
      ]);
      assert.deepEqual(nano, ['"width"', "16"], "nano's width shown beside its column's name");
    }
    await page.screenshot({
      path: `${ARTIFACTS}/details-commands${path.replace("/", "-")}-390.png`,
      fullPage: true,
    });
  }
  await page.goto(`${base}/results?task=world-region`);
  await page.waitForSelector("[data-testid=pgr-bars]");
  const text = (await page.textContent("main"))!;
  assert.doesNotMatch(text, /95 %/, "95 and % joined by a no-break space");
  assert.match(text, /whisker: 95\u00a0% interval/);
  await page.setViewportSize({ width: 1440, height: 900 });
}

dashboardTest(
  "dashboard details: one demo button, delete asks first, readable adapters, chart text apart, PGR vs knowledge, commands whole, a sweep's id under /experiments",
  TOKEN,
  async (page, lab) => {
    await checkOneDemoButton(page, lab.base, lab.db);
    await checkTaskDeleteAsksFirst(page, lab.base);
    await checkRanOn(page, lab.base, lab.db);
    await checkChartText(page, lab.base, await seedCrowdedCharts(lab.db));
    await checkKnowledgeChart(page, lab.base, lab.db);
    await checkNoSplitWords(page, lab.base);
    await checkWrongKind(page, lab.base, lab.db);
  },
  { consoleErrors: false, init: recordCanvasText },
);
