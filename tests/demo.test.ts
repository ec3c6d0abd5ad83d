/**
 * The demo: its headline (server/lab/demo.ts demoHeadline) on hand-made sweep cells, counted by hand; the
 * demo job end to end on an embedded PGlite with stand-ins for the pretraining and the sweep (what it
 * pretrains, what it records, its progress by phase, its result, cancel); and POST /api/demo (201, then
 * 409 while one is queued).
 */
import assert from "node:assert/strict";
import { and, eq } from "drizzle-orm";
import { openDb } from "../db/client.ts";
import { experiments, jobs, metrics, models, results, runs } from "../db/schema.ts";
import { createApp } from "../server/api/app.ts";
import { buildOpenApiDocument } from "../server/api/openapi.ts";
import { DEMO_JOB_TYPE, type JobEvent } from "../server/contract/jobs.ts";
import type { CellSummary, ExperimentResult, MedianSummary } from "../server/contract/results.ts";
import { EventBus } from "../server/jobs/bus.ts";
import { makeDemoHandler } from "../server/jobs/demo-job.ts";
import type { PretrainSize } from "../server/jobs/pretrain-job.ts";
import { registerJobHandler } from "../server/jobs/registry.ts";
import { startWorker } from "../server/jobs/worker.ts";
import { DEMO_SWEEP, demoHeadline } from "../server/lab/demo.ts";
import { LADDER } from "../server/lab/ladder.ts";
import { modelDir, type PretrainStatus, readStatus, writeStatus } from "../server/lab/model-store.ts";
import type { SweepCell, SweepOptions, SweepResult } from "../server/lab/sweep.ts";
import { waitFor } from "./helpers/wait.ts";

const dataDir = await Deno.makeTempDir({ prefix: "lab-demo-test-" });
const { db, close } = await openDb({ dataDir });
const TOKEN = "demo-test-token";
const bus = new EventBus();
const app = createApp({ db, dataDir, token: TOKEN, bus });

Deno.test.afterAll(async () => {
  await close();
  await Deno.remove(dataDir, { recursive: true });
});

const SIZES = ["nano", "micro", "mini", "small"];
const assertNear = (actual: number | null, expected: number, what: string) =>
  assert.ok(actual !== null && Math.abs(actual - expected) < 1e-9, `${what}: ${actual} vs ${expected}`);

/** A cell with the fields the headline reads; the rest are plausible constants. */
function cell(
  task: string,
  [weak, strong]: [string, string],
  method: "naive" | "auxconf",
  pgr: number,
  gapTooSmall: boolean,
): SweepCell {
  const meanCi = (mean: number) => ({ mean, lo: mean, hi: mean });
  return {
    task,
    weak,
    strong,
    method,
    seeds: [0, 1],
    weak_acc: meanCi(0.6),
    ceiling_acc: meanCi(0.8),
    student_acc: meanCi(0.6 + 0.2 * pgr),
    pgr,
    pgr_ci: meanCi(pgr),
    gap_too_small: gapTooSmall,
    gap_noise: 0.05,
    agreement: { all: 0.9, supervisor_correct: 0.95, supervisor_wrong: 0.5 },
    agreement_ci: { all: null, supervisor_correct: null, supervisor_wrong: null },
    oracle_student_acc: 0.8,
    oracle_pgr: pgr,
    control_acc: null,
    results: [],
  };
}

const median = (
  task: string | null,
  method: "naive" | "auxconf",
  value: number,
  [lo, hi]: [number, number],
  [cells, skipped]: [number, number],
): MedianSummary => ({ task, method, median_pgr: value, median_ci: { lo, hi }, cells, skipped });

/**
 * Two world tasks over the demo's four sizes. Naive, real gaps: region 0.2, 0.4, 0.5, 0.3 (4 pairs);
 * kind 0.6, 0.7 (2 pairs). Medians by hand: region 0.35, kind 0.65, all six 0.45. Auxconf runs only at
 * nano→small: region 0.8, kind flagged.
 */
function demoSweep(
  opts: { kindMicroSmallReal?: boolean; naiveLo?: number; noNaive?: boolean } = {},
): SweepResult {
  const naive: [string, [string, string], number, boolean][] = [
    ["world-region", ["nano", "micro"], 0.2, false],
    ["world-region", ["nano", "mini"], 0.4, false],
    ["world-region", ["nano", "small"], 0.5, false],
    ["world-region", ["micro", "mini"], 0.1, true],
    ["world-region", ["micro", "small"], 0.3, false],
    ["world-region", ["mini", "small"], -0.2, true],
    ["world-kind", ["nano", "micro"], 0.0, true],
    ["world-kind", ["nano", "mini"], 0.6, false],
    ["world-kind", ["nano", "small"], 0.7, false],
    ["world-kind", ["micro", "mini"], 0.2, true],
    ["world-kind", ["micro", "small"], 0.1, !opts.kindMicroSmallReal],
    ["world-kind", ["mini", "small"], 0.3, true],
  ];
  const cells = [
    ...(opts.noNaive
      ? []
      : naive.map(([task, pair, pgr, flagged]) => cell(task, pair, "naive", pgr, flagged))),
    cell("world-region", ["nano", "small"], "auxconf", 0.8, false),
    cell("world-kind", ["nano", "small"], "auxconf", 0.9, true),
  ];
  const medians = [
    // Per-task medians come first: the headline must pick the medians over every task (task null).
    ...(opts.noNaive ? [] : [
      median("world-region", "naive", 0.35, [0.2, 0.5], [4, 2]),
      median("world-kind", "naive", 0.65, [0.6, 0.7], [2, 4]),
      median(null, "naive", 0.45, [opts.naiveLo ?? 0.1, 0.65], [6, 6]),
    ]),
    median("world-region", "auxconf", 0.8, [0.8, 0.8], [1, 0]),
    median(null, "auxconf", 0.8, [0.8, 0.8], [1, 1]),
  ];
  return { cells, medians, experiments: 28, seconds: 1 };
}

Deno.test("demoHeadline: the medians over every task, real pairs per task by hand, the two checks", () => {
  const h = demoHeadline(demoSweep(), SIZES);
  assert.equal(h.naive?.median_pgr, 0.45);
  assert.equal(h.naive?.task, null);
  assert.equal(h.auxconf?.median_pgr, 0.8);
  assert.equal(h.auxconf?.task, null);
  // Flagged naive cells are not real pairs; auxconf cells are not counted at all.
  assert.deepEqual(h.realPairs, { "world-region": 4, "world-kind": 2 });
  assert.deepEqual(h.checks, { naiveAboveZero: true, threeRealPairsPerTask: false });
  assert.deepEqual([h.largestGap.weak, h.largestGap.strong], ["nano", "small"]);
  assert.deepEqual(h.largestGap.naive.map((c) => [c.task, c.pgr]), [["world-region", 0.5], [
    "world-kind",
    0.7,
  ]]);
  assert.deepEqual(h.largestGap.auxconf.map((c) => [c.task, c.pgr, c.gap_too_small]), [
    ["world-region", 0.8, false],
    ["world-kind", 0.9, true],
  ]);

  const third = demoHeadline(demoSweep({ kindMicroSmallReal: true }), SIZES);
  assert.deepEqual(third.realPairs, { "world-region": 4, "world-kind": 3 });
  assert.equal(third.checks.threeRealPairsPerTask, true, "three real pairs in every task");
  // The interval must lie above zero: touching it is not enough.
  assert.equal(demoHeadline(demoSweep({ naiveLo: 0 }), SIZES).checks.naiveAboveZero, false);
  assert.equal(demoHeadline(demoSweep({ naiveLo: -0.05 }), SIZES).checks.naiveAboveZero, false);
  const none = demoHeadline(demoSweep({ noNaive: true }), SIZES);
  assert.equal(none.naive, null);
  assert.deepEqual(none.realPairs, {});
  assert.deepEqual(none.checks, { naiveAboveZero: false, threeRealPairsPerTask: false });
});

function call(method: string, path: string, body?: unknown) {
  const headers: Record<string, string> = { Authorization: `Bearer ${TOKEN}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  return app.request(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
}

const jobRow = async (id: number) => (await db.select().from(jobs).where(eq(jobs.id, id)))[0];

Deno.test("POST /api/demo: 201 with the job and its sweep, then 409 while that demo is queued", async () => {
  // The demo takes no settings: one in the body is refused, not ignored.
  const withSeeds = await call("POST", "/api/demo", { seeds: [0] });
  assert.equal(withSeeds.status, 400);
  assert.match((await withSeeds.json()).error.message, /^body: the demo takes no settings/);
  assert.equal((await db.select().from(jobs)).length, 0);
  // No worker here: the demo stays queued.
  const first = await call("POST", "/api/demo", {});
  assert.equal(first.status, 201);
  const { experiment, job } = await first.json();
  assert.equal(job.type, DEMO_JOB_TYPE);
  assert.equal(job.status, "queued");
  assert.equal(job.params.experimentId, experiment.id);
  // Stored as a normal sweep, with the demo's settings as its config.
  const sweep = await (await app.request(`/api/sweeps/${experiment.id}`)).json();
  assert.equal(sweep.name, "demo");
  assert.equal(sweep.jobId, job.id);
  assert.deepEqual(
    [
      sweep.config.tasks,
      sweep.config.sizes,
      sweep.config.methods,
      sweep.config.seeds,
      sweep.config.auxconfAt,
    ],
    [["world"], SIZES, ["naive", "auxconf"], DEMO_SWEEP.seeds, "largest-gap"],
  );

  const second = await call("POST", "/api/demo");
  assert.equal(second.status, 409);
  const refused = (await second.json()).error;
  assert.equal(refused.code, "demo_active");
  assert.deepEqual(refused.details, { jobId: job.id, experimentId: experiment.id });
  assert.match(refused.message, new RegExp(`already queued \\(job ${job.id}, sweep ${experiment.id}\\)`));
  assert.equal((await db.select().from(experiments)).length, 1, "the refused request left no sweep behind");

  // Once it is cancelled, a new demo may start.
  assert.equal((await call("POST", `/api/sweeps/${experiment.id}/cancel`)).status, 200);
  const third = await call("POST", "/api/demo");
  assert.equal(third.status, 201);
  assert.equal((await call("POST", `/api/jobs/${(await third.json()).job.id}/cancel`)).status, 200);

  const doc = buildOpenApiDocument() as { paths: Record<string, Record<string, unknown>> };
  assert.ok(doc.paths["/demo"]?.post, "POST /demo is documented");
});

/** A pretrained size's status file, as the pretraining writes it. */
function pretrainedStatus(size: string): PretrainStatus {
  const tokens = LADDER.find((s) => s.name === size)!.tokens;
  return {
    size,
    status: "pretrained",
    params: 1000,
    config: { vocabSize: 40, contextLength: 16, width: 16, layers: 1, heads: 2 },
    step: 10,
    totalSteps: 10,
    tokens,
    batchSize: 4,
    seqLen: 16,
    seed: 1,
    lr: 1e-2,
    corpusHash: "abc",
    tokenizerId: "tok",
    knowledgeAttribute: "region",
    val_loss: 4.5,
    knowledge: 0.3,
    wallSeconds: 1,
    tokensPerSecond: 100,
    curves: {
      train: [{ step: 0, tokens: 0, value: 7 }, { step: 10, tokens, value: 4 }],
      val: [],
      knowledge: [],
    },
    updatedAt: "2026-01-01T00:00:00.000Z",
  };
}

/**
 * Stands in for pretrainSize: a size with a status file is cached; the others report half, wait until two
 * sizes are halfway (so two train at once, as the pool runs them) and a moment more, then report all — or, with
 * `untilAborted`, report a little and wait for the abort.
 */
function pretrainStandIn(calls: string[], untilAborted = false): PretrainSize {
  let halfway = 0;
  let bothHalfway = () => {};
  const twoHalfway = new Promise<void>((resolve) => bothHalfway = resolve);
  return async (opts) => {
    calls.push(opts.size);
    const dir = modelDir(opts.dataDir, opts.size);
    if ((await readStatus(opts.dataDir, opts.size))?.status === "pretrained") {
      return { status: pretrainedStatus(opts.size), dir, cached: true, resumedFromStep: 10 };
    }
    const total = LADDER.find((s) => s.name === opts.size)!.tokens;
    if (untilAborted) {
      opts.onProgress?.({ step: 1, totalSteps: 10, tokens: total / 10, totalTokens: total });
      // A cancel may land before this line runs (a loaded machine): an aborted signal fires no more events.
      return await new Promise((_, reject) => {
        const stop = () => reject(new Error("pretraining interrupted"));
        if (opts.signal?.aborted) return stop();
        opts.signal?.addEventListener("abort", stop, { once: true });
      });
    }
    opts.onProgress?.({ step: 5, totalSteps: 10, tokens: total / 2, totalTokens: total, trainLoss: 5 });
    // Held past the job's progress throttle (250 ms), so the event naming both sizes goes out.
    if (++halfway === 2) setTimeout(bothHalfway, 400);
    await twoHalfway;
    opts.onProgress?.({ step: 10, totalSteps: 10, tokens: total, totalTokens: total, trainLoss: 4 });
    return { status: pretrainedStatus(opts.size), dir, cached: false, resumedFromStep: 0 };
  };
}

/** One experiment with the fields the store writes; PGR by the formula, here. */
function experiment(
  task: string,
  method: "naive" | "auxconf",
  seed: number,
  [weak, ceiling, student]: [number, number, number],
): ExperimentResult {
  const pgr = (student - weak) / (ceiling - weak);
  const readings = { weak_acc: weak, ceiling_acc: ceiling, student_acc: student, pgr };
  return {
    task,
    weak: "nano",
    strong: "small",
    method,
    seed,
    ...readings,
    gap_too_small: false,
    agreement: { all: 0.9, supervisor_correct: 0.95, supervisor_wrong: 0.5 },
    selected: { ...readings, steps: { weak: 4, ceiling: 4, student: 3 } },
    oracle: { ...readings, steps: { weak: 4, ceiling: 4, student: 2 }, student_step: 2 },
    runs: [],
  } as unknown as ExperimentResult;
}

/** The stand-in sweep's last progress report, as runSweep words it. */
const SWEEP_LAST_PROGRESS = {
  step: 2,
  total: 2,
  stage: "3/3 world-kind nano→small auxconf s0: student",
  unit: "experiments",
};

/**
 * The demo job's pretraining phase as its events show it: tokens over micro, mini and small's budgets, going
 * up to the end, and small and mini training at once (one event names both, with both runs and losses).
 */
function assertPretrainPhase(events: JobEvent[], pretrainRuns: { id: number; modelSize: string | null }[]) {
  const budget = (size: string) => LADDER.find((s) => s.name === size)!.tokens;
  const phaseTotal = budget("micro") + budget("mini") + budget("small");
  const pretraining = events.filter((e) => e.status === "running" && /^phase 1\/2/.test(e.message ?? ""));
  assert.ok(pretraining.length >= 2, `pretraining events: ${pretraining.length}`);
  assert.ok(pretraining.every((e) => e.total === phaseTotal), "one total over every size to pretrain");
  assert.ok(pretraining.every((e) => e.unit === "tokens"), "pretraining counts tokens");
  const steps = pretraining.map((e) => e.step!);
  assert.deepEqual(steps, steps.toSorted((a, b) => a - b), "tokens only go up");
  assert.equal(steps.at(-1), phaseTotal, "the last size's last tokens end the phase");
  // While small and mini train at once, one event names both, with both runs and both losses.
  const both = pretraining.find((e) => e.runIds?.length === 2);
  assert.ok(both, "an event with the two runs training at once");
  assert.match(
    both.message ?? "",
    /^phase 1\/2, pretraining (small and mini|mini and small) \(0 of 3 sizes done\): /,
  );
  assert.deepEqual(
    both.runIds!.toSorted(),
    pretrainRuns.filter((r) => r.modelSize !== "micro").map((r) => r.id).toSorted(),
  );
  assert.deepEqual(Object.keys(both.metrics ?? {}).toSorted(), ["mini loss", "small loss"]);
  const last = pretraining.at(-1)!.message ?? "";
  assert.match(last, /pretraining (\w+ and )?micro( and \w+)? \([12] of 3 sizes done\)/, last);
}

Deno.test("the demo job pretrains what is missing, records the sweep as a sweep, reports by phase", async () => {
  await Deno.mkdir(modelDir(dataDir, "nano"), { recursive: true });
  await writeStatus(dataDir, "nano", pretrainedStatus("nano"));
  const pretrained: string[] = [];
  const swept: SweepOptions[] = [];
  const written = [
    experiment("world-region", "naive", 0, [0.6, 0.9, 0.75]),
    experiment("world-region", "naive", 1, [0.62, 0.88, 0.75]),
    experiment("world-kind", "auxconf", 0, [0.55, 0.85, 0.82]),
  ];
  registerJobHandler(
    DEMO_JOB_TYPE,
    makeDemoHandler({
      pretrain: pretrainStandIn(pretrained),
      sweep: async (options, deps) => {
        swept.push(options);
        for (const [i, r] of written.entries()) await deps.onExperiment?.(r, i, written.length);
        deps.onProgress?.(SWEEP_LAST_PROGRESS);
        return demoSweep();
      },
    }),
  );
  const events: JobEvent[] = [];
  const unsubscribe = bus.subscribe((e) => e.type === DEMO_JOB_TYPE && events.push(e));
  const worker = startWorker({ db, dataDir, bus, pollMs: 20, log: () => {}, types: [DEMO_JOB_TYPE] });
  try {
    const created = await call("POST", "/api/demo");
    assert.equal(created.status, 201);
    const { experiment: sweep, job } = await created.json();
    const done = await waitFor("the demo job", async () => {
      const row = await jobRow(job.id);
      return row && ["done", "failed", "cancelled"].includes(row.status) ? row : undefined;
    });
    assert.equal(done.status, "done", done.error ?? "");

    // Two at a time, the largest budgets first; nano was pretrained before: taken from the cache, without
    // a run or a models row of this job.
    assert.deepEqual(pretrained.slice(0, 2), ["small", "mini"]);
    assert.deepEqual(pretrained.toSorted(), SIZES.toSorted());
    const result = done.result as Record<string, unknown>;
    assert.deepEqual(result.cachedSizes, ["nano"]);
    assert.deepEqual(result.pretrainedNow, ["micro", "mini", "small"]);
    const pretrainRuns = await db.select().from(runs).where(
      and(eq(runs.jobId, job.id), eq(runs.role, "pretrain")),
    )
      .orderBy(runs.id);
    assert.deepEqual(pretrainRuns.map((r) => [r.modelSize, r.status, r.experimentId]), [
      ["small", "done", null],
      ["mini", "done", null],
      ["micro", "done", null],
    ]);
    const losses = await db.select().from(metrics).where(
      and(eq(metrics.runId, pretrainRuns[0].id), eq(metrics.name, "train_loss")),
    ).orderBy(metrics.step);
    assert.deepEqual(losses.map((m) => [m.step, m.value]), [[0, 7], [5, 5], [10, 4]]);
    const modelRows = await db.select().from(models).orderBy(models.name);
    assert.deepEqual(
      modelRows.map((m) => [m.name, m.status, m.jobId]),
      [["micro", "pretrained", null], ["mini", "pretrained", null], ["small", "pretrained", null]],
      "each row is released when its size is done (the job goes on to the sweep)",
    );

    // The sweep ran with the demo's settings, through the stored request.
    for (const key of Object.keys(DEMO_SWEEP) as (keyof SweepOptions)[]) {
      assert.deepEqual(swept[0][key], DEMO_SWEEP[key], key);
    }
    // Its experiments are result rows of the sweep, as a sweep job writes them.
    const rows = await db.select().from(results).where(eq(results.experimentId, sweep.id)).orderBy(
      results.id,
    );
    assert.deepEqual(rows.map((r) => [r.task, r.method, r.seed]), [
      ["world-region", "naive", 0],
      ["world-region", "naive", 1],
      ["world-kind", "auxconf", 0],
    ]);
    assertNear(rows[0].pgr, 0.15 / 0.3, "pgr");
    assertNear(rows[1].pgr, 0.13 / 0.26, "pgr");
    assertNear(rows[2].pgr, 0.27 / 0.3, "pgr");
    const [sweepRow] = await db.select().from(experiments).where(eq(experiments.id, sweep.id));
    assert.equal(sweepRow.status, "done", "the sweep follows its job");

    // The headline in the job's result: the hand-counted figures, cells without their experiments.
    const headline = result.headline as {
      naive: MedianSummary;
      realPairs: Record<string, number>;
      checks: Record<string, boolean>;
      largestGap: { naive: (CellSummary & { results?: unknown })[] };
    };
    assert.equal(headline.naive.median_pgr, 0.45);
    assert.deepEqual(headline.realPairs, { "world-region": 4, "world-kind": 2 });
    assert.deepEqual(headline.checks, { naiveAboveZero: true, threeRealPairsPerTask: false });
    assert.deepEqual(headline.largestGap.naive.map((c) => c.pgr), [0.5, 0.7]);
    assert.ok(headline.largestGap.naive.every((c) => c.results === undefined));

    // Progress: pretraining in tokens over the three sizes to pretrain, then the sweep.
    assertPretrainPhase(events, pretrainRuns);
    const sweeping = events.filter((e) =>
      e.status === "running" && /^phase 2\/2, sweep: /.test(e.message ?? "")
    );
    assert.deepEqual([sweeping.at(-1)?.step, sweeping.at(-1)?.total, sweeping.at(-1)?.unit], [
      2,
      2,
      "experiments",
    ]);
    assert.equal(events.at(-1)?.status, "done");
  } finally {
    unsubscribe();
    await worker.stop();
  }
});

Deno.test("cancelling the demo's sweep stops its pretraining: the sizes are partial, the runs cancelled", async () => {
  await db.delete(models);
  const pretrained: string[] = [];
  registerJobHandler(
    DEMO_JOB_TYPE,
    makeDemoHandler({
      pretrain: pretrainStandIn(pretrained, true),
      sweep: () => Promise.reject(new Error("the sweep must not start")),
    }),
  );
  const worker = startWorker({ db, dataDir, bus, pollMs: 20, log: () => {}, types: [DEMO_JOB_TYPE] });
  try {
    const { experiment: sweep, job } = await (await call("POST", "/api/demo")).json();
    await waitFor("small and mini to be pretraining", async () => {
      const rows = await db.select().from(models).where(eq(models.jobId, job.id));
      return rows.filter((r) => r.status === "pretraining").length === 2;
    });
    assert.equal((await call("POST", `/api/sweeps/${sweep.id}/cancel`)).status, 200);
    const stopped = await waitFor("both pretrain runs to stop", async () => {
      const found = await db.select().from(runs).where(
        and(eq(runs.jobId, job.id), eq(runs.role, "pretrain")),
      ).orderBy(runs.modelSize);
      return found.length === 2 && found.every((r) => r.status === "cancelled") ? found : undefined;
    });
    assert.deepEqual(stopped.map((r) => r.modelSize), ["mini", "small"]);
    assert.deepEqual(pretrained, ["small", "mini"], "the two largest at once, the cancel before the rest");
    const rows = await db.select().from(models).orderBy(models.name);
    assert.deepEqual(
      rows.map((r) => [r.name, r.status]),
      [["mini", "partial"], ["small", "partial"]],
      "a stopped pretraining is resumable",
    );
    assert.equal((await jobRow(job.id)).status, "cancelled");
    const [sweepRow] = await db.select().from(experiments).where(eq(experiments.id, sweep.id));
    assert.equal(sweepRow.status, "cancelled");
  } finally {
    await worker.stop();
  }
});
