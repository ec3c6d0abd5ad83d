/**
 * The shapes of what an experiment produces: written by the pipeline (server/lab), stored as JSON by the
 * jobs, served by the API and drawn by the dashboard. Types only, so every layer can import them.
 */
import type { MethodName, StudentMode } from "./methods.ts";

export interface Interval {
  lo: number;
  hi: number;
}

export interface Agreement {
  /** Share of examples where student and supervisor predict the same label; null if there are none. */
  all: number | null;
  /** The same share among examples the supervisor got right; null when it got none right. */
  supervisor_correct: number | null;
  /** The same share among examples the supervisor got wrong; null when it made no mistake. */
  supervisor_wrong: number | null;
}

export interface FinetuneHyper {
  epochs: number;
  lr: number;
  batchSize: number;
  /** Share of the steps with a linear learning-rate warmup. */
  warmupFraction: number;
  weightDecay: number;
  /** Evaluate on validation and test every N steps (and at the end). */
  evalEvery: number;
  /** Seed of the data order. */
  seed: number;
  /** > 0: the aux confidence loss with this final α (warmed up over the first 20 % of steps). */
  alphaMax?: number;
}

export interface CurvePoint {
  step: number;
  epoch: number;
  lr: number;
  /** Training loss of the last step before this point (NaN at step 0). */
  trainLoss: number;
  valAcc: number;
  testAcc: number;
  /** α of the aux confidence loss at this step (0 for plain CE). */
  alpha: number;
}

/** Accuracies of one model at one point of its curve. */
export interface Reading {
  step: number;
  valAcc: number;
  testAcc: number;
}

export const PROBE_KINDS = ["lp(weak)", "lp(gt)", "ft(weak)+lp(gt)", "ft(gt)"] as const;
export type ProbeKind = typeof PROBE_KINDS[number];

export interface LayerProbe {
  kind: ProbeKind;
  /** 0 = embeddings, l = after block l, L + 1 = after the final LayerNorm. */
  layer: number;
  accuracy: number;
}

export type Role = "weak" | "ceiling" | "student" | "bootstrap";

export interface RoleRun {
  role: Role;
  size: string;
  /** What trained it, e.g. "train1 GT", "train2 weak labels (auxconf)". */
  description: string;
  mode: StudentMode;
  cached: boolean;
  hyper: FinetuneHyper | null;
  steps: number;
  seconds: number;
  final: Reading;
  selected: Reading;
  oracle: Reading;
  curve: CurvePoint[];
}

export interface Readings {
  weak_acc: number;
  ceiling_acc: number;
  student_acc: number;
  pgr: number;
}

export interface PromptingReport {
  k: number;
  zero_shot: number;
  k_shot_gt: number;
  k_shot_weak: number;
  /** Share predicted positive in each setting (1 or 0: the model always says the same word). */
  positive_rate: { zero_shot: number; k_shot_gt: number; k_shot_weak: number };
}

export interface ExperimentResult extends Readings {
  task: string;
  weak: string;
  strong: string;
  method: MethodName;
  mode: StudentMode;
  seed: number;
  n: { train1: number; train2: number; validation: number; test: number };
  /** Ceiling − weak is within the test-sampling noise: the PGR is not meaningful. */
  gap_too_small: boolean;
  gap_noise: number;
  agreement: Agreement;
  /** 95 % intervals: Wilson for accuracies, paired bootstrap over test examples for PGR. */
  ci: { weak_acc: Interval; ceiling_acc: Interval; student_acc: Interval; pgr: Interval };
  /** The readings at the last step (no selection). */
  final: Readings;
  /** Ground-truth early stopping (ORACLE: best test point of each curve; never used to select). */
  oracle: Readings & { student_step: number };
  selection: "validation";
  alpha_max: number | null;
  chain: string[];
  /** Weak labels on train2: hard accuracy against GT (how good the supervision is). */
  weak_label_acc: number;
  prompting?: PromptingReport;
  probes?: LayerProbe[];
  runs: RoleRun[];
  cache: { hits: number; misses: number };
  seconds: number;
}
