/**
 * The request bodies of experiments and sweeps: validated by the API, read by the jobs, checked by the
 * dashboard's forms. Checks that need the server's data (ladder sizes, known tasks) happen in the routes.
 */
import { z } from "zod";
import { int, SIZE_NAME, TASK_NAME } from "./fields.ts";
import { GenerativeBase, Method, METHOD_NAMES, StudentMode } from "./methods.ts";

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
  generativeBase: GenerativeBase.optional(),
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
  methods: z.array(Method).min(1, "methods must name at least one method").max(METHOD_NAMES.length),
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
