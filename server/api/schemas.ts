/**
 * Every request body and query of the lab's API as a zod schema: the single source of truth for the
 * server's validation, the TypeScript types, the OpenAPI document and the dashboard's form validation.
 * This file imports zod only (the dashboard bundles it); checks that need the server's data (ladder sizes,
 * known tasks) happen in the routes.
 */
import { z } from "zod";

const int = (label: string) =>
  z.number({ error: `${label} must be a number` }).int(`${label} must be an integer`);
/** Query strings arrive as text: numbers are coerced, then checked like body numbers. */
const queryInt = (label: string) =>
  z.coerce.number({ error: `${label} must be a number` }).int(`${label} must be an integer`);

export const SIZE_NAME = z.string().min(1, "size name must not be empty").max(64);
export const TASK_NAME = z.string().regex(
  /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/,
  "task name must be 1–64 letters, digits, '_', '-' or '.', starting with a letter or digit",
);

export const METHODS = ["naive", "auxconf", "bootstrap", "generative"] as const;
export const Method = z.enum(METHODS, { error: `method must be one of: ${METHODS.join(", ")}` });

/** How the student (and the ceiling) learn: the whole model, or a logistic probe on frozen last-layer features. */
export const STUDENT_MODES = ["finetune", "probe"] as const;
export const StudentMode = z.enum(STUDENT_MODES, {
  error: `studentMode must be one of: ${STUDENT_MODES.join(", ")}`,
});
export const GENERATIVE_BASES = ["naive", "auxconf"] as const;

/**
 * Names of the metric series the pipeline writes per run (server/jobs/experiment-jobs.ts, pretrain.ts): the
 * one place both the writers and the dashboard's charts take them from.
 */
export const METRIC_SERIES = {
  trainLoss: "train_loss",
  valLoss: "val_loss",
  valAcc: "val_acc",
  testAcc: "test_acc",
  lr: "lr",
  alpha: "alpha",
  knowledge: "knowledge",
} as const;

export const JOB_STATUSES = ["queued", "running", "done", "failed", "cancelled"] as const;
export const JobStatus = z.enum(JOB_STATUSES);

export const ErrorBody = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    details: z.unknown().optional(),
  }),
}).meta({ id: "Error" });

export const IdParam = z.object({ id: queryInt("id").positive("id must be positive") });
export const NameParam = z.object({ name: z.string().min(1) });

export const Page = z.object({
  limit: queryInt("limit").min(1).max(1000).default(100),
  offset: queryInt("offset").min(0).default(0),
});

const trainingKnobs = {
  seed: int("seed").min(0, "seed must be ≥ 0").default(0),
  epochs: int("epochs").min(1, "epochs must be ≥ 1").max(1000).optional(),
  learningRate: z.number().positive("learningRate must be > 0").max(1).optional(),
  batchSize: int("batchSize").min(1).max(4096).optional(),
  /** Final weight of the auxiliary confidence loss (auxconf). */
  alphaMax: z.number().min(0).max(1).optional(),
  /** Ground-truth early stopping: evaluate on test along the curve and report the best point too. */
  earlyStoppingOracle: z.boolean().default(true),
  /** Let the task's test items into pretraining (default: kept out). */
  leakage: z.boolean().default(false),
  probes: z.boolean().default(false),
  studentMode: StudentMode.default("finetune"),
  /** Use at most this many examples per split (quick runs). */
  maxExamples: int("maxExamples").min(8, "maxExamples must be ≥ 8").max(1_000_000).optional(),
};

/** Settings that only the generative method reads; refused with other methods rather than ignored. */
const generativeKnobs = {
  /** Loss after the LM finetuning: plain cross-entropy on weak labels, or the aux confidence loss. */
  generativeBase: z.enum(GENERATIVE_BASES, {
    error: `generativeBase must be one of: ${GENERATIVE_BASES.join(", ")}`,
  }).optional(),
  /** Epochs of LM finetuning on the task's unlabeled texts (default 2). */
  lmEpochs: int("lmEpochs").min(1, "lmEpochs must be ≥ 1").max(100).optional(),
};

export const ExperimentCreate = z.object({
  name: z.string().max(200).optional(),
  task: TASK_NAME,
  weak: SIZE_NAME,
  strong: SIZE_NAME,
  method: Method.default("naive"),
  /** Intermediate sizes for the bootstrap method, weak → … → strong. */
  bootstrapSizes: z.array(SIZE_NAME).max(10).optional(),
  ...trainingKnobs,
  ...generativeKnobs,
  /** Zero-shot and k-shot prompting baselines of the pretrained strong model (k demonstrations). */
  promptingShots: int("promptingShots").min(1, "promptingShots must be ≥ 1").max(32).optional(),
}).strict().superRefine((config, ctx) => {
  if (config.method === "generative") return;
  for (const key of ["generativeBase", "lmEpochs"] as const) {
    if (config[key] !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: [key],
        message: `${key} applies to the generative method only (method is ${config.method})`,
      });
    }
  }
}).meta({ id: "ExperimentCreate" });
export type ExperimentCreate = z.infer<typeof ExperimentCreate>;

export const SweepCreate = z.object({
  name: z.string().max(200).optional(),
  tasks: z.array(TASK_NAME).min(1, "tasks must name at least one task").max(50),
  /** Every (weak, strong) pair with weak smaller than strong is run. */
  sizes: z.array(SIZE_NAME).min(2, "sizes must name at least two sizes").max(20),
  methods: z.array(Method).min(1, "methods must name at least one method").max(METHODS.length),
  seeds: z.array(int("seed").min(0)).min(1, "seeds must hold at least one seed").max(50),
  epochs: trainingKnobs.epochs,
  learningRate: trainingKnobs.learningRate,
  batchSize: trainingKnobs.batchSize,
  alphaMax: trainingKnobs.alphaMax,
  earlyStoppingOracle: trainingKnobs.earlyStoppingOracle,
  leakage: trainingKnobs.leakage,
  probes: trainingKnobs.probes,
  studentMode: trainingKnobs.studentMode,
  maxExamples: trainingKnobs.maxExamples,
}).strict().meta({ id: "SweepCreate" });
export type SweepCreate = z.infer<typeof SweepCreate>;

export const ExperimentListQuery = Page.extend({ status: JobStatus.optional() });

/** JSON import: the JSONL text inside a JSON body. */
export const TaskImportBody = z.object({
  name: TASK_NAME,
  description: z.string().max(2000).optional(),
  jsonl: z.string().min(1, "jsonl must not be empty"),
}).strict().meta({ id: "TaskImport" });
/** Raw JSONL upload (Content-Type text/plain or application/x-ndjson): name and description in the query. */
export const TaskImportQuery = z.object({
  name: TASK_NAME.optional(),
  description: z.string().max(2000).optional(),
});

export const PretrainCreate = z.object({
  /** Weight-initialization and sampling seed (default: the pretraining code's, as for `lab pretrain`). */
  seed: int("seed").min(0).optional(),
  /** Override the ladder's token budget. */
  tokens: int("tokens").positive("tokens must be > 0").optional(),
  /** Pretrain again even when a checkpoint exists. */
  force: z.boolean().default(false),
}).strict().meta({ id: "PretrainCreate" });

export const BenchCreate = z.object({
  /** Kernels to keep, by name or first word ("matmul"); [] measures no kernels. Default: all. */
  kernels: z.array(z.string().min(1).max(64)).max(50).optional(),
  quick: z.boolean().default(true),
  /** Also time a full training step (forward, backward, AdamW) at a few GPT sizes. */
  training: z.boolean().default(true),
}).strict().meta({ id: "BenchCreate" });

export const BenchResultsQuery = Page.extend({
  device: z.string().optional(),
  kernel: z.string().optional(),
});

export const ToyTrainParams = z.object({
  steps: int("steps").min(1, "steps must be ≥ 1").max(100_000).default(100),
  seed: int("seed").min(0, "seed must be ≥ 0").default(0),
  stepDelayMs: int("stepDelayMs").min(0).max(10_000).default(0),
  samples: int("samples").min(8).max(100_000).default(200),
  saveEvery: int("saveEvery").min(1).default(10),
}).strict().meta({ id: "ToyTrainParams" });

/** Jobs that may be enqueued directly (the others are created by their own endpoints). */
export const JobCreate = z.discriminatedUnion("type", [
  z.object({ type: z.literal("toy-train"), params: ToyTrainParams.default(ToyTrainParams.parse({})) })
    .strict(),
], { error: 'type must be "toy-train" (other jobs start from their own endpoints)' }).meta({
  id: "JobCreate",
});

export const JobListQuery = Page.extend({
  status: JobStatus.optional(),
  type: z.string().max(64).optional(),
});

export const RunListQuery = Page.extend({
  experimentId: queryInt("experimentId").positive().optional(),
  jobId: queryInt("jobId").positive().optional(),
  role: z.string().max(32).optional(),
});

export const MetricsQuery = z.object({
  /** Comma-separated series names (default: all series of the run). */
  names: z.string().max(1000).optional(),
  maxPoints: queryInt("maxPoints").min(2, "maxPoints must be ≥ 2").max(100_000).default(1000),
  fromStep: queryInt("fromStep").min(0, "fromStep must be ≥ 0").optional(),
  toStep: queryInt("toStep").min(0, "toStep must be ≥ 0").optional(),
}).refine((q) => q.fromStep === undefined || q.toStep === undefined || q.fromStep <= q.toStep, {
  message: "fromStep must be ≤ toStep",
  path: ["fromStep"],
});

export const ResultsQuery = Page.extend({
  experimentId: queryInt("experimentId").positive().optional(),
  task: z.string().max(64).optional(),
});

export const ProbesQuery = Page.extend({
  experimentId: queryInt("experimentId").positive().optional(),
  runId: queryInt("runId").positive().optional(),
});

/** One server-sent event on /api/events (event name `job`). */
export const JobEventSchema = z.object({
  jobId: z.number(),
  type: z.string(),
  status: JobStatus,
  step: z.number().optional(),
  total: z.number().optional(),
  message: z.string().optional(),
  loss: z.number().optional(),
  accuracy: z.number().optional(),
  etaSeconds: z.number().optional(),
  metrics: z.record(z.string(), z.number()).optional(),
  /** The run(s) being trained when the event was sent (a run page reloads only on its own). */
  runIds: z.array(z.number()).optional(),
  error: z.string().optional(),
}).meta({ id: "JobEvent" });
