/**
 * Jobs as every layer sees them: statuses, the live event on /api/events, the progress a job row stores,
 * and the parameters of the jobs the API and the dashboard start (pretrain, bench, toy-train, demo).
 */
import { z } from "zod";
import { int, oneOf, text } from "./fields.ts";

export const JOB_STATUSES = ["queued", "running", "done", "failed", "cancelled"] as const;
export const JobStatus = oneOf("status", JOB_STATUSES);
export type JobStatus = z.infer<typeof JobStatus>;

/**
 * Every job type the lab runs; server/jobs/handlers.ts registers one handler for each: a toy job, kernel
 * benchmarks, pretraining, the pipeline's w2s and sweep (which queues a sweep-cell job per cell), the demo.
 */
export const JOB_TYPES = ["toy-train", "bench", "pretrain", "w2s", "sweep", "sweep-cell", "demo"] as const;
export type JobType = typeof JOB_TYPES[number];
export const JobType = oneOf("type", JOB_TYPES);

/** One server-sent event on /api/events (event name `job`). */
export const JobEventSchema = z.object({
  jobId: z.number(),
  type: z.string(),
  status: JobStatus,
  step: z.number().optional(),
  total: z.number().optional(),
  /** What step and total count ("tokens", "steps", "experiments"). */
  unit: z.string().optional(),
  message: z.string().optional(),
  loss: z.number().optional(),
  accuracy: z.number().optional(),
  /** Seconds left at the current rate. */
  etaSeconds: z.number().optional(),
  metrics: z.record(z.string(), z.number()).optional(),
  /** The run(s) being trained when the event was sent (a run page reloads only on its own). */
  runIds: z.array(z.number()).optional(),
  error: z.string().optional(),
}).meta({ id: "JobEvent" });
export type JobEvent = z.infer<typeof JobEventSchema>;

/** The `progress` column of a job row: the handler's latest update, its ETA and when it was written. */
export interface JobProgress {
  step?: number;
  total?: number;
  unit?: string;
  message?: string;
  metrics?: Record<string, number>;
  etaSeconds?: number;
  runIds?: number[];
  at?: string;
}

/**
 * "93.1/112 experiments": done of total in their unit, a fractional count to one decimal (the CLI's progress
 * bar and the dashboard's job progress both show it).
 */
export function progressCount(step: number, total: number, unit?: string): string {
  // Thousands grouped ("892,416/1,500,160 tokens"): a pretraining's token counts run to seven digits.
  const count = (n: number) =>
    n.toLocaleString(
      "en-US",
      Number.isInteger(n) ? {} : { minimumFractionDigits: 1, maximumFractionDigits: 1 },
    );
  return `${count(step)}/${count(total)}${unit ? ` ${unit}` : ""}`;
}

/** The job that runs the demo (server/lab/demo.ts): pretraining what is missing, then the demo sweep. */
export const DEMO_JOB_TYPE = "demo" satisfies JobType;

/** The job type of one group of a sweep's experiments (server/jobs/experiment-jobs.ts queues them). */
export const SWEEP_CELL_JOB = "sweep-cell" satisfies JobType;

export const PretrainCreate = z.object({
  /** Weight-initialization and sampling seed (default: the pretraining code's, as for `lab pretrain`). */
  seed: int("seed", 0).optional(),
  /** Override the ladder's token budget. */
  tokens: int("tokens", 1).optional(),
  /** Pretrain again even when a checkpoint exists. */
  force: z.boolean().default(false),
  /** Share of training windows from the real corpus (WordNet, SOTU, Moby-Dick); default 0, the world alone. */
  realShare: z.number({ error: "realShare must be a number" }).min(0, "realShare must be in [0, 1)")
    .lt(1, "realShare must be in [0, 1)").optional(),
  /** Let the built-in tasks' test items into the real corpus (the leakage ablation; needs realShare > 0). */
  leakage: z.boolean({ error: "leakage must be true or false" }).default(false),
  /** Task split seeds whose test items the real corpus keeps out (default 0, 1, 2). */
  splitSeeds: z.array(int("splitSeeds", 0), {
    error: "splitSeeds must be an array of integers",
  }).min(1, "splitSeeds must name at least one seed").max(50).optional(),
}).strict().superRefine((request, ctx) => {
  if (request.leakage && !(request.realShare! > 0)) {
    ctx.addIssue({
      code: "custom",
      path: ["leakage"],
      message: "leakage needs realShare > 0: the world alone holds no text task's test items",
    });
  }
}).meta({ id: "PretrainCreate" });

export const BenchCreate = z.object({
  /** Kernels to keep, by name or first word ("matmul"); [] measures no kernels. Default: all. */
  kernels: z.array(text("kernels").min(1).max(64)).max(50).optional(),
  quick: z.boolean().default(true),
  /** Also time a full training step (forward, backward, AdamW) at a few GPT sizes. */
  training: z.boolean().default(true),
}).strict().meta({ id: "BenchCreate" });

export const ToyTrainParams = z.object({
  steps: int("steps", 1, 100_000).default(100),
  seed: int("seed", 0).default(0),
  stepDelayMs: int("stepDelayMs", 0, 10_000).default(0),
  samples: int("samples", 8, 100_000).default(200),
  saveEvery: int("saveEvery", 1).default(10),
}).strict().meta({ id: "ToyTrainParams" });
