/**
 * The request bodies of experiments and sweeps: validated by the API, read by the jobs, checked by the
 * dashboard's forms. Checks that need the server's data (ladder sizes, known tasks) happen in the routes.
 */
import { z } from "zod";
import { int, numberMessages, oneOf, SIZE_NAME, TASK_NAME, text } from "./fields.ts";
import { GenerativeBase, Method, METHOD_NAMES, StudentMode } from "./methods.ts";
import { MODEL_REF } from "./model-ref.ts";
import { FINETUNE_RECIPE, RECIPE_OPTIONS, type RecipeOption } from "./results.ts";

/**
 * Who labels the student's training set: "trained", a weak model finetuned on train1 (the default); or
 * "given", the weak labels imported with the task (`weak_label`, from a gt_label + soft_label file).
 */
export const SUPERVISORS = ["trained", "given"] as const;
export type SupervisorSource = typeof SUPERVISORS[number];
/** What an experiment with supervisor "given" names as its weak model: no size of the ladder is one. */
export const GIVEN_SUPERVISOR = "given";

/** The options of an experiment (or of every experiment of a sweep) that only some methods or modes read. */
export interface MethodOptions {
  methods: readonly string[];
  supervisor?: string;
  /** The weak size: with supervisor "given" there is none. */
  weak?: string;
  studentMode?: string;
  alphaMax?: number;
  generativeBase?: string;
  lmEpochs?: number;
  bootstrapSizes?: readonly string[];
  probes?: boolean;
  /** The finetuning recipe (FINETUNE_RECIPE). */
  embeddings?: string;
  headInit?: string;
  decayTo?: string;
  /** Where a sweep runs the aux-confidence loss ("all" pairs or only the "largest-gap" pair). */
  auxconfAt?: string;
}

/**
 * Options that would be silently ignored by the chosen methods or student mode, each with the reason: an
 * experiment that asks for them is refused rather than run without them. The API, the CLI and the
 * pipeline all check with this one function.
 */
export function optionConflicts(o: MethodOptions): { field: string; message: string }[] {
  const conflicts: { field: string; message: string }[] = [];
  const uses = (m: string) => o.methods.includes(m);
  const auxLoss = uses("auxconf") || (uses("generative") && o.generativeBase === "auxconf");
  if (o.studentMode === "probe" && auxLoss) {
    conflicts.push({
      field: "studentMode",
      message:
        "the aux-confidence loss needs a finetuned student: the probe student is a logistic regression " +
        "on frozen features without it; choose the finetune mode (API studentMode, CLI --mode) or method naive",
    });
  }
  if (o.studentMode === "probe" && o.probes) {
    conflicts.push({
      field: "probes",
      message: "per-layer probes after finetuning (ft(weak)+lp(gt), ft(gt)) need studentMode finetune",
    });
  }
  if (o.studentMode === "probe") {
    for (const key of RECIPE_OPTIONS.filter((k) => o[k] !== undefined)) {
      conflicts.push({
        field: key,
        message: `${key} is a finetuning-recipe option: the probe student and ceiling are logistic ` +
          "regressions on frozen features, with no trunk to finetune; choose studentMode finetune (CLI --mode)",
      });
    }
  }
  if (o.alphaMax !== undefined && !auxLoss) {
    conflicts.push({
      field: "alphaMax",
      message: "alphaMax is the aux-confidence loss's weight: use it with method auxconf",
    });
  }
  if (!uses("generative")) {
    for (const key of ["generativeBase", "lmEpochs"] as const) {
      if (o[key] !== undefined) {
        const chosen = `method${o.methods.length === 1 ? " is" : "s are"} ${o.methods.join(", ")}`;
        conflicts.push({ field: key, message: `${key} applies to the generative method only (${chosen})` });
      }
    }
  }
  if (o.auxconfAt === "largest-gap" && !uses("auxconf")) {
    conflicts.push({
      field: "auxconfAt",
      message: "auxconfAt says where the aux-confidence loss runs: add method auxconf, or leave it at all",
    });
  }
  if (o.supervisor === "given" && uses("bootstrap")) {
    conflicts.push({
      field: "supervisor",
      message: "the bootstrap method relabels with models trained from a weak model; given labels have " +
        "none: choose another method, or supervisor trained",
    });
  }
  if (o.supervisor === "given" && o.weak !== undefined && o.weak !== GIVEN_SUPERVISOR) {
    conflicts.push({
      field: "weak",
      message: `with supervisor given no weak model is trained (the task's weak_label is the supervisor): ` +
        `set weak to "${GIVEN_SUPERVISOR}" (CLI: leave --weak out)`,
    });
  }
  if (o.bootstrapSizes !== undefined && !uses("bootstrap")) {
    conflicts.push({
      field: "bootstrapSizes",
      message: "bootstrapSizes applies to the bootstrap method only",
    });
  }
  return conflicts;
}

/**
 * A recipe option's schema: one of its values, absent meaning the default (the first). The cast keeps
 * each option's own values in the inferred type (the indexed access alone widens to every option's).
 */
const recipeKnob = <K extends RecipeOption>(key: K) =>
  oneOf(key, FINETUNE_RECIPE[key].values as typeof FINETUNE_RECIPE[K]["values"]).optional();

/**
 * Imported models (registered with `lab models add` / POST /api/models/import) to run on instead of the
 * lab's ladder: they must share one tokenizer and are ordered by parameters; weak, strong, sizes and
 * bootstrapSizes then name models of it. Absent: the lab's own ladder.
 */
const Ladder = z.array(SIZE_NAME).min(2, "ladder must name at least two models (weak and strong)").max(20)
  .optional();

/** A number field whose every message names it ("learningRate must be ≤ 1"). */
const real = (label: string) => z.number({ error: numberMessages(label) });

/** The numeric settings of an experiment and their bounds: the API's and the CLI's (NumericKnobs). */
const numericKnobs = {
  seed: int("seed", 0).default(0),
  epochs: int("epochs", 1, 1000).optional(),
  learningRate: real("learningRate").positive().max(1).optional(),
  batchSize: int("batchSize", 1, 4096).optional(),
  /** Final weight of the auxiliary confidence loss (auxconf). */
  alphaMax: real("alphaMax").min(0).max(1).optional(),
  /** Use at most this many examples per split (quick runs). */
  maxExamples: int("maxExamples", 8, 1_000_000).optional(),
  /** Zero-shot and k-shot prompting baselines of the pretrained strong model (k demonstrations). */
  promptingShots: int("promptingShots", 1, 32).optional(),
};

/**
 * The numeric knobs alone, for a command line that reads them as text: `lab w2s --lr 50` is refused with
 * the bound the API applies to learningRate, from this one definition.
 */
export const NumericKnobs = z.object(numericKnobs).partial();

const trainingKnobs = {
  seed: numericKnobs.seed,
  epochs: numericKnobs.epochs,
  learningRate: numericKnobs.learningRate,
  batchSize: numericKnobs.batchSize,
  alphaMax: numericKnobs.alphaMax,
  /** Let the task's test items into pretraining (default: kept out). */
  leakage: z.boolean().default(false),
  probes: z.boolean().default(false),
  studentMode: StudentMode.default("finetune"),
  maxExamples: numericKnobs.maxExamples,
  /** Also train the strong architecture from random init on ground truth: what pretraining contributes. */
  control: z.boolean().default(false),
  /** Finetuning recipe of every finetuned role (absent: plain full finetuning from a zero head). */
  embeddings: recipeKnob("embeddings"),
  headInit: recipeKnob("headInit"),
  decayTo: recipeKnob("decayTo"),
};

/** Settings that only the generative method reads; refused with other methods rather than ignored. */
const generativeKnobs = {
  /** Loss after the LM finetuning: plain cross-entropy on weak labels, or the aux confidence loss. */
  generativeBase: GenerativeBase.optional(),
  /** Epochs of LM finetuning on the task's unlabeled texts (default 2). */
  lmEpochs: int("lmEpochs", 1, 100).optional(),
};

export const ExperimentCreate = z.object({
  name: text("name").max(200).optional(),
  task: TASK_NAME,
  weak: SIZE_NAME,
  /** A size, or a snapshot along its pretraining ("medium@30", model-ref.ts). */
  strong: MODEL_REF,
  method: Method.default("naive"),
  /** Intermediate sizes for the bootstrap method, weak → … → strong. */
  bootstrapSizes: z.array(SIZE_NAME).max(10).optional(),
  ladder: Ladder,
  /** "given": the student learns the task's own weak labels and weak is "given" (absent: "trained"). */
  supervisor: oneOf("supervisor", SUPERVISORS).optional(),
  ...trainingKnobs,
  ...generativeKnobs,
  promptingShots: numericKnobs.promptingShots,
}).strict().superRefine((config, ctx) => {
  for (const { field, message } of optionConflicts({ ...config, methods: [config.method] })) {
    ctx.addIssue({ code: "custom", path: [field], message });
  }
}).meta({ id: "ExperimentCreate" });
export type ExperimentCreate = z.infer<typeof ExperimentCreate>;

/**
 * Where a sweep runs the aux-confidence loss: every pair, or only the largest gap (the smallest weak, the
 * largest strong) — the paper's finding is about large gaps.
 */
export const AUXCONF_AT = ["all", "largest-gap"] as const;
const AuxconfAt = oneOf("auxconfAt", AUXCONF_AT);

export const SweepCreate = z.object({
  name: text("name").max(200).optional(),
  tasks: z.array(TASK_NAME).min(1, "tasks must name at least one task").max(50),
  /** Every (weak, strong) pair with weak smaller than strong is run; a snapshot (SIZE@PCT) only as strong. */
  sizes: z.array(MODEL_REF).min(2, "sizes must name at least two sizes").max(20),
  ladder: Ladder,
  methods: z.array(Method).min(1, "methods must name at least one method").max(METHOD_NAMES.length),
  seeds: z.array(numericKnobs.seed.unwrap()).min(1, "seeds must hold at least one seed").max(50)
    .refine(
      (seeds) => new Set(seeds).size === seeds.length,
      "seeds must not repeat a seed (a repeat reruns the same experiment)",
    ),
  epochs: trainingKnobs.epochs,
  learningRate: trainingKnobs.learningRate,
  batchSize: trainingKnobs.batchSize,
  alphaMax: trainingKnobs.alphaMax,
  leakage: trainingKnobs.leakage,
  probes: trainingKnobs.probes,
  studentMode: trainingKnobs.studentMode,
  maxExamples: trainingKnobs.maxExamples,
  control: trainingKnobs.control,
  embeddings: trainingKnobs.embeddings,
  headInit: trainingKnobs.headInit,
  decayTo: trainingKnobs.decayTo,
  auxconfAt: AuxconfAt.default("all"),
}).strict().superRefine((config, ctx) => {
  for (const { field, message } of optionConflicts(config)) {
    ctx.addIssue({ code: "custom", path: [field], message });
  }
}).meta({ id: "SweepCreate" });
export type SweepCreate = z.infer<typeof SweepCreate>;

/** The settings of an experiment or sweep config that change its readings (not its name, sizes or seeds). */
const READING_SETTINGS = [
  "studentMode",
  "supervisor",
  "ladder",
  "epochs",
  "learningRate",
  "batchSize",
  "alphaMax",
  "maxExamples",
  "leakage",
  "embeddings",
  "headInit",
  "decayTo",
  "generativeBase",
  "lmEpochs",
  "bootstrapSizes",
] as const;

/** What a stored config holds for a setting it leaves at the lab's default. */
const SETTING_DEFAULTS: Partial<Record<typeof READING_SETTINGS[number], unknown>> = {
  studentMode: "finetune",
  leakage: false,
};

/**
 * The settings that set a stored experiment or sweep apart from the lab's defaults, e.g. "studentMode
 * probe, maxExamples 16"; "" for the defaults. Results of different settings are never pooled into one
 * cell (server/lab/sweep.ts summarizeResults).
 */
export function settingsLabel(config: Record<string, unknown>): string {
  return READING_SETTINGS.filter((key) => config[key] !== undefined && config[key] !== SETTING_DEFAULTS[key])
    .map((key) => `${key} ${[config[key]].flat().join(",")}`).join(", ");
}
