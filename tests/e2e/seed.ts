/**
 * Seed data for the dashboard's end-to-end test: a small, hand-made set of results, probes, runs with
 * metric curves, a pretraining run and benchmark rows, written straight into the lab's database (the API
 * has no routes that write results; the pipeline does), and one pairwise (preference-task) result. The
 * expected figures are computed by hand below. Metric series carry the names the pipeline writes
 * (METRIC_SERIES).
 */
import { benchResults, experiments, metrics, probeResults, results, runs } from "../../db/schema.ts";
import type { LabDb } from "../../db/client.ts";
import { METRIC_SERIES } from "../../server/contract/series.ts";

/** PGR of the naive rows per pair; the median over the three pairs is 0.30 (sorted: 0.20, 0.30, 0.50). */
export const NAIVE_PGR = { "nano→micro": 0.2, "nano→small": 0.5, "micro→small": 0.3 } as const;
export const NAIVE_MEDIAN_PGR = "0.300";
/** auxconf: 0.40, 0.60, 0.90 → median 0.60. */
export const AUXCONF_PGR = { "nano→micro": 0.4, "nano→small": 0.9, "micro→small": 0.6 } as const;
export const AUXCONF_MEDIAN_PGR = "0.600";

/** The student's test-accuracy curve: best 0.9 at step 20, final 0.85 at step 30. */
export const STUDENT_TEST_ACC: Array<[number, number]> = [[0, 0.6], [10, 0.8], [20, 0.9], [30, 0.85]];
export const EARLY_STOP_TEXT =
  "best 0.9000 at step 20; final 0.8500 at step 30 — stopping early would have kept 0.0500 more";

const ACC = { nano: 0.6, micro: 0.7, small: 0.8 } as const;

/** A world preference task, and the PGR of its one naive result (nano→small). */
export const PAIRWISE_TASK = "world-prefer-region";
/**
 * 0.30: with it the naive median over every task stays NAIVE_MEDIAN_PGR (sorted 0.20, 0.30, 0.30, 0.50 →
 * (0.30 + 0.30) / 2), so the pairwise result leaves the classification figures above as they are.
 */
const PAIRWISE_PGR = 0.3;

/** One stored result: the row's columns and the pipeline's result JSON the summary endpoint reads. */
function resultRow(
  experimentId: number,
  method: "naive" | "auxconf",
  pair: string,
  pgr: number,
  { task, format }: { task: string; format?: "pairwise" } = { task: "world-region" },
) {
  const [weak, strong] = pair.split("→") as Array<keyof typeof ACC>;
  const weakAcc = ACC[weak], ceilingAcc = ACC[strong] + 0.1;
  const studentAcc = weakAcc + pgr * (ceilingAcc - weakAcc);
  const agreement = { all: 0.9 - pgr / 4, supervisor_correct: 0.97, supervisor_wrong: 0.7 - pgr / 2 };
  const oracle = {
    weak_acc: weakAcc,
    ceiling_acc: ceilingAcc,
    student_acc: studentAcc + 0.01,
    pgr: pgr + 0.05,
  };
  return {
    experimentId,
    task,
    weakSize: weak,
    strongSize: strong,
    method,
    seed: 0,
    weakAcc,
    ceilingAcc,
    studentAcc,
    pgr,
    gapTooSmall: false,
    oracleStudentAcc: weakAcc + (pgr + 0.05) * (ceilingAcc - weakAcc),
    oraclePgr: pgr + 0.05,
    oracleStep: 20,
    agreement,
    // What the summary endpoint reads: the pipeline's result (200 test examples: every gap is real).
    full: {
      task,
      ...(format ? { format } : {}),
      weak,
      strong,
      method,
      seed: 0,
      n: { train1: 200, train2: 200, validation: 160, test: 200 },
      weak_acc: weakAcc,
      ceiling_acc: ceilingAcc,
      student_acc: studentAcc,
      pgr,
      agreement,
      oracle: { ...oracle, student_step: 20 },
      // The pipeline's paired-bootstrap interval, here PGR ± 0.1; the pairwise row has none (an old result),
      // so its one-cell median shows a dash.
      ...(format ? {} : { ci: { pgr: { lo: pgr - 0.1, hi: pgr + 0.1 } } }),
      warnings: [],
    },
  };
}

/** One experiment on a preference task with one naive result whose format says pairwise; its id. */
export async function seedPairwiseResult(db: LabDb): Promise<number> {
  const [experiment] = await db.insert(experiments).values({
    kind: "experiment",
    name: "seeded pairwise",
    config: { task: PAIRWISE_TASK, weak: "nano", strong: "small", method: "naive", seed: 0 },
    status: "done",
    finishedAt: new Date(),
  }).returning();
  await db.insert(results).values(
    resultRow(experiment.id, "naive", "nano→small", PAIRWISE_PGR, {
      task: PAIRWISE_TASK,
      format: "pairwise",
    }),
  );
  return experiment.id;
}

export async function seedResults(db: LabDb): Promise<{ experimentId: number; studentRunId: number }> {
  const [experiment] = await db.insert(experiments).values({
    kind: "experiment",
    name: "seeded",
    config: { task: "world-region", weak: "nano", strong: "small", method: "naive", seed: 0 },
    status: "done",
    finishedAt: new Date(),
  }).returning();
  const rows = [];
  for (const [method, pgrs] of [["naive", NAIVE_PGR], ["auxconf", AUXCONF_PGR]] as const) {
    for (const [pair, pgr] of Object.entries(pgrs)) rows.push(resultRow(experiment.id, method, pair, pgr));
  }
  await db.insert(results).values(rows);

  const kinds = ["lp(weak)", "lp(gt)", "ft(weak)+lp(gt)", "ft(gt)"];
  await db.insert(probeResults).values(
    kinds.flatMap((kind, k) =>
      [0, 1, 2, 3].map((layer) => ({
        experimentId: experiment.id,
        layer,
        kind,
        accuracy: 0.55 + 0.05 * layer + 0.04 * k,
      }))
    ),
  );

  const [student] = await db.insert(runs).values({
    experimentId: experiment.id,
    role: "student",
    modelSize: "small",
    status: "done",
    seconds: 12.5,
  }).returning();
  await db.insert(metrics).values([
    ...STUDENT_TEST_ACC.map(([step, value]) => ({
      runId: student.id,
      name: METRIC_SERIES.testAcc,
      step,
      value,
    })),
    // A student's validation score is agreement with its supervisor's labels (validationSeries).
    ...STUDENT_TEST_ACC.map(([step, value]) => ({
      runId: student.id,
      name: METRIC_SERIES.valAgreement,
      step,
      value: value - 0.02,
    })),
    // The pipeline has no training loss at step 0 (nothing trained yet).
    ...[10, 20, 30].map((step) => ({
      runId: student.id,
      name: METRIC_SERIES.trainLoss,
      step,
      value: 0.7 - step / 60,
    })),
    ...[0, 10, 20, 30].flatMap((step) => [
      { runId: student.id, name: METRIC_SERIES.lr, step, value: 1e-3 * (1 - step / 40) },
      { runId: student.id, name: METRIC_SERIES.alpha, step, value: 0 },
    ]),
  ]);

  const [pretrain] = await db.insert(runs).values({ role: "pretrain", modelSize: "nano", status: "done" })
    .returning();
  await db.insert(metrics).values([0, 50, 100, 150, 200].flatMap((step) => [
    { runId: pretrain.id, name: METRIC_SERIES.trainLoss, step, value: 8 - Math.log1p(step) },
    { runId: pretrain.id, name: METRIC_SERIES.valLoss, step, value: 8.2 - Math.log1p(step) },
  ]));

  await db.insert(benchResults).values([
    {
      device: "llvmpipe",
      kernel: "matmul",
      version: "v1",
      shape: "512x512x512",
      ms: 300,
      gflops: 0.9,
      gbps: 1.2,
    },
    {
      device: "llvmpipe",
      kernel: "matmul",
      version: "v3",
      shape: "512x512x512",
      ms: 20,
      gflops: 13.4,
      gbps: 18,
    },
    {
      device: "llvmpipe",
      kernel: "fma ceiling",
      version: "registers only",
      shape: "16384 inv × 2048 it",
      ms: 100,
      gflops: 67,
      gbps: null,
    },
    {
      device: "llvmpipe",
      kernel: "layernorm",
      version: "v1",
      shape: "64x4096",
      ms: 0.8,
      gflops: null,
      gbps: 2.6,
    },
  ]);
  return { experimentId: experiment.id, studentRunId: student.id };
}
