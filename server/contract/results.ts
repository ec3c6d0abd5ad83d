/**
 * The shapes of what an experiment produces: written by the pipeline (server/lab), stored as JSON by the
 * jobs, served by the API and drawn by the dashboard. Types and constant tables only, so every layer can
 * import them.
 */
import type { MethodName, StudentMode } from "./methods.ts";
import type { TaskFormat } from "./tasks.ts";

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

/**
 * The finetuning recipe: options of every finetuned role, each with its values and what the second does.
 * The FIRST value is plain full finetuning, which an option absent from a FinetuneHyper means; the lab's
 * default recipe is server/lab/ladder.ts BASE_HYPER.
 */
export const FINETUNE_RECIPE = {
  embeddings: {
    values: ["train", "frozen"],
    help: "frozen: the token and position embeddings are neither updated nor weight-decayed",
  },
  headInit: {
    values: ["zero", "probe"],
    help: "probe (LP-FT): the class head starts as a logistic probe fitted on the pretrained features",
  },
  decayTo: {
    values: ["zero", "pretrained"],
    help: "pretrained (L2-SP): weight decay pulls the matrices toward their starting values, not zero",
  },
} as const;
export type RecipeOption = keyof typeof FINETUNE_RECIPE;
export const RECIPE_OPTIONS = Object.keys(FINETUNE_RECIPE) as RecipeOption[];
export type FinetuneRecipe = { [K in RecipeOption]?: typeof FINETUNE_RECIPE[K]["values"][number] };

export interface FinetuneHyper extends FinetuneRecipe {
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

/** The roles of an experiment; "control" is the strong architecture trained from random init. */
export const ROLES = ["weak", "ceiling", "student", "bootstrap", "control"] as const;
export type Role = typeof ROLES[number];

/**
 * What a role's validation accuracy is scored against: ground truth (weak, ceiling), or the labels of
 * its supervisor (student, bootstrap step) — then it is agreement with the supervisor, not accuracy.
 */
export type ValidationLabels = "ground truth" | "supervisor labels";

export interface RoleRun {
  role: Role;
  size: string;
  /** What trained it, e.g. "train1 GT", "train2 weak labels (auxconf)". */
  description: string;
  /** What the curve's valAcc and the selected reading's valAcc are scored against. */
  validation: ValidationLabels;
  mode: StudentMode;
  cached: boolean;
  hyper: FinetuneHyper | null;
  steps: number;
  /** Examples per micro-batch (gradient accumulation where below the batch size); absent: not recorded. */
  microBatch?: number;
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

/** Test readings of one checkpoint choice, with the training step each model was read at. */
export interface StepReadings extends Readings {
  steps: { weak: number; ceiling: number; student: number };
}

/**
 * 95 % intervals of the selected reading: Wilson for accuracies, the paired bootstrap over test examples for
 * PGR; null where a model's test predictions at its selected point were not kept (a role cached before).
 */
export interface SelectedIntervals {
  weak_acc: Interval;
  ceiling_acc: Interval;
  student_acc: Interval;
  pgr: Interval | null;
}

/** The checkpoint choices an experiment reports; "final" is the headline (the paper's reading). */
export const READINGS = ["final", "selected", "oracle"] as const;
export type ReadingName = typeof READINGS[number];

/** Whether each model is within test-sampling noise of chance (the majority-class rate of test). */
export interface ChanceCheck {
  /** The majority-class share of the test labels (0.5 on a balanced task). */
  rate: number;
  /** Half-width of the 95 % band around chance on n test examples: 1.96 · √(rate(1 − rate)/n). */
  noise: number;
  near: { weak: boolean; ceiling: boolean; student: boolean };
}

export interface PromptingReport {
  k: number;
  zero_shot: number;
  k_shot_gt: number;
  k_shot_weak: number;
  /** Share predicted positive in each setting (1 or 0: the model always says the same word). */
  positive_rate: { zero_shot: number; k_shot_gt: number; k_shot_weak: number };
}

/**
 * One experiment. The top-level accuracies and PGR are the FINAL checkpoint's (the paper's and the openai
 * code's reading); agreement, intervals and the weak labels come from the final models too.
 */
export interface ExperimentResult extends Readings {
  task: string;
  /**
   * "pairwise": a preference task read by the reward head; every accuracy is the share of test pairs
   * ranked correctly, and agreement is agreement on which member is preferred. Absent in results
   * stored before pairwise tasks existed: classification.
   */
  format?: TaskFormat;
  weak: string;
  strong: string;
  /**
   * "given": the student learned the task's own weak labels (no weak model was trained; weak is "given"
   * and weak_acc is those labels' test accuracy). Absent: a weak model trained on train1.
   */
  supervisor?: "given";
  /**
   * Recall of the knowledge world's first attribute by the strong model's checkpoint, from its snapshot's
   * record (a snapshot "SIZE@PCT", or a final model pretrained with snapshots); null when not recorded.
   */
  strongKnowledge: number | null;
  method: MethodName;
  mode: StudentMode;
  seed: number;
  n: { train1: number; train2: number; validation: number; test: number };
  /** Which checkpoint the top-level readings are: always the final one. */
  reading: "final";
  /** Ceiling − weak is within the test-sampling noise: the PGR is not meaningful. */
  gap_too_small: boolean;
  gap_noise: number;
  agreement: Agreement;
  /** 95 % intervals: Wilson for accuracies, paired bootstrap over test examples for PGR. */
  ci: { weak_acc: Interval; ceiling_acc: Interval; student_acc: Interval; pgr: Interval };
  /** The headline readings again, with the step of each model (its last). */
  final: StepReadings;
  /**
   * Each model at its best validation point. The student's validation labels are the weak model's, so
   * its point is the one that agrees with the supervisor most: a reading, never the headline. Its
   * intervals follow `ci`'s rules on each model's test predictions at that point (absent in results
   * stored before they were computed).
   */
  selected: StepReadings & { ci?: SelectedIntervals };
  /** Ground-truth early stopping (ORACLE: best test point of each curve; never used to select). */
  oracle: StepReadings & { student_step: number };
  chance: ChanceCheck;
  /** Plain-language cautions: a model within noise of chance, a gap too small for PGR. */
  warnings: string[];
  /**
   * The random-init control (when asked for): the strong architecture never pretrained, trained on
   * train2 ground truth; ceiling − control is what pretraining contributes.
   */
  control?: { ceiling_acc: number; ci: Interval; step: number };
  alpha_max: number | null;
  chain: string[];
  /** Weak labels on train2: hard accuracy against GT (how good the supervision is). */
  weak_label_acc: number;
  prompting?: PromptingReport;
  probes?: LayerProbe[];
  runs: RoleRun[];
  /** This experiment's cache lookups (roles, the generative LM): hits read back, misses computed. */
  cache: { hits: number; misses: number };
  seconds: number;
}

/** A mean over seeds with its 95 % t-interval. */
export interface MeanCi {
  mean: number;
  lo: number;
  hi: number;
}

/** One (task, weak, strong, method) cell of a sweep or of stored results, across its seeds. */
export interface CellSummary {
  task: string;
  weak: string;
  strong: string;
  method: MethodName;
  seeds: number[];
  weak_acc: MeanCi;
  ceiling_acc: MeanCi;
  student_acc: MeanCi;
  /** PGR of the mean accuracies (the cell's PGR) and the t-interval of the per-seed PGRs. */
  pgr: number;
  pgr_ci: MeanCi;
  /** Ceiling − weak within noise (test sampling or the seed spread of the gap): left out of medians. */
  gap_too_small: boolean;
  gap_noise: number;
  agreement: Agreement;
  /**
   * 95 % interval of each agreement: the t-interval over seeds, or for one seed the Wilson interval over its
   * test examples (all of them, those the supervisor got right, those it got wrong); null where none.
   */
  agreement_ci: Record<keyof Agreement, Interval | null>;
  /** Oracle (best test point) student accuracy and PGR, means over seeds. */
  oracle_student_acc: number;
  oracle_pgr: number;
  /** The random-init control's test accuracy over the seeds that ran it (null when none did). */
  control_acc: MeanCi | null;
  /**
   * Settings that set the cell's experiments apart from the lab's defaults (contract settingsLabel, e.g.
   * "studentMode probe, maxExamples 16"); absent or "" for the defaults. Stored results of different
   * settings form different cells.
   */
  settings?: string;
}

/** The paper's summary statistic: median PGR over a group's cells, flagged cells left out. */
export interface MedianSummary {
  /** The task, or null for the median over every task's cells. */
  task: string | null;
  method: MethodName;
  median_pgr: number;
  /**
   * The suite's 95 % interval (server/lab/metrics.ts suiteMedianInterval: each cell's PGR drawn from its own
   * interval); over one cell, that cell's own; NaN (null in JSON) over none, or when no cell has an interval.
   */
  median_ci: Interval;
  /** The cells' settings (CellSummary.settings): medians never pool cells of different settings. */
  settings?: string;
  /** Cells used, and cells left out (gap too small, or no finite PGR). */
  cells: number;
  skipped: number;
}

/** What the CLI's sweep, the API's results summary and the dashboard all show, from one function. */
export interface ResultsSummary {
  cells: CellSummary[];
  /** Per task × method, then per method over all tasks (task null). */
  medians: MedianSummary[];
}
