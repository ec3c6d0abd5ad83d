/**
 * `deno task lab w2s --task T --weak A --strong B --method M [--seed S] [--mode finetune|probe] [--json]`:
 * one weak→strong experiment on the pretrained ladder (server/lab/w2s.ts). Weak models, ceilings and weak
 * labels are cached under <dataDir>/cache. Progress with ETA on stderr; with --json the last stdout line
 * is one JSON object: the final checkpoint's weak_acc, ceiling_acc, student_acc, pgr, agreement and
 * intervals (the headline), the selected and oracle readings with their steps, warnings, runs.
 *
 * More options: --epochs N --lr X --batch-size N --alpha-max X --base naive|auxconf (generative)
 * --bootstrap-sizes a,b --probes (per-layer saliency) --prompting K (zero/K-shot baselines)
 * --supervisor given: no weak model; the student learns the task's own weak labels (an imported task whose
 * every example has `weak_label`: a gt_label + soft_label file), on all of train, and weak_acc is their
 * test accuracy; --weak is then left out.
 * --max-examples N --no-cache --control (the random-init control: the strong architecture never
 * pretrained) --leakage (the ladder saw the task's test items). --ladder a,b,…: imported models (`lab
 * models add`) sharing one tokenizer instead of the lab's ladder; --weak and --strong then name two of them. --task also takes a path to a .jsonl file
 * or an imported task's name. A pairwise task (world-prefer-*, or a comparison file: prompt?, chosen,
 * rejected) trains reward models (a scalar reward head, Bradley–Terry loss): every accuracy is the share
 * of test pairs ranked correctly; --prompting does not apply.
 * Finetuning recipe of every finetuned role (default, chosen on validation: LP-FT with frozen embeddings
 * at lr 1e-4, decay toward zero — server/lab/ladder.ts BASE_HYPER):
 * --embeddings train|frozen (frozen: token and position embeddings neither updated nor decayed)
 * --head-init zero|probe (probe, LP-FT: the class head starts as a logistic probe on the features)
 * --decay-to zero|pretrained (pretrained, L2-SP: weight decay pulls matrices toward their start values)
 */
import { flagRuleError, parseFlags, requireFlags, UsageError } from "../../server/contract/command-flags.ts";
import { join } from "node:path";
import { ProgressBar } from "../progress.ts";
import { ExperimentCache } from "../../server/lab/cache.ts";
import { METHOD_NAMES, type MethodName } from "../../server/contract/methods.ts";
import {
  GIVEN_SUPERVISOR,
  type MethodOptions,
  NumericKnobs,
  optionConflicts,
  SUPERVISORS,
  type SupervisorSource,
} from "../../server/contract/experiments.ts";
import {
  type ExperimentResult,
  FINETUNE_RECIPE,
  type FinetuneRecipe,
  type Interval,
  RECIPE_OPTIONS,
  type RecipeOption,
} from "../../server/contract/results.ts";
import { modelSourceFor } from "../../server/lab/own-models.ts";
import { runExperiment } from "../../server/lab/w2s.ts";
import { agreementIntervals } from "../../server/lab/sweep.ts";
import { importedTaskLookup } from "../../server/jobs/experiment-jobs.ts";

/** The command-line flag of each finetuning-recipe option (lab w2s and lab sweep). */
const RECIPE_FLAGS: Record<RecipeOption, string> = {
  embeddings: "embeddings",
  headInit: "head-init",
  decayTo: "decay-to",
};

/** --evaluate-on test|validation: where readings are taken (validation: for studies; test never loaded). */
export function evaluateOnOption(value: string | undefined): "test" | "validation" | undefined {
  if (value === undefined || value === "test" || value === "validation") return value;
  throw new UsageError(`--evaluate-on must be test or validation, got "${value}"`);
}

export const RECIPE_PARSE_OPTIONS = {
  "evaluate-on": { type: "string" },
  embeddings: { type: "string" },
  "head-init": { type: "string" },
  "decay-to": { type: "string" },
} as const;

/** The recipe options given on the command line, each checked against its allowed values. */
export function recipeOptions(values: Record<string, unknown>): FinetuneRecipe {
  const recipe: Record<string, unknown> = {};
  for (const key of RECIPE_OPTIONS) {
    const flag = RECIPE_FLAGS[key];
    const allowed: readonly unknown[] = FINETUNE_RECIPE[key].values;
    if (values[flag] === undefined) continue;
    if (!allowed.includes(values[flag])) {
      throw new UsageError(`--${flag} must be ${allowed.join(" or ")}, got ${JSON.stringify(values[flag])}`);
    }
    recipe[key] = values[flag];
  }
  return recipe as FinetuneRecipe;
}

export const W2S_OPTIONS = {
  task: { type: "string" },
  weak: { type: "string" },
  strong: { type: "string" },
  supervisor: { type: "string", default: "trained" },
  method: { type: "string", default: "naive" },
  seed: { type: "string", default: "0" },
  mode: { type: "string", default: "finetune" },
  json: { type: "boolean", default: false },
  epochs: { type: "string" },
  lr: { type: "string" },
  "batch-size": { type: "string" },
  "alpha-max": { type: "string" },
  base: { type: "string" },
  "bootstrap-sizes": { type: "string" },
  probes: { type: "boolean", default: false },
  prompting: { type: "string" },
  "max-examples": { type: "string" },
  "no-cache": { type: "boolean", default: false },
  control: { type: "boolean", default: false },
  leakage: { type: "boolean", default: false },
  ladder: { type: "string" },
  ...RECIPE_PARSE_OPTIONS,
} as const;

/** The command-line flag of each option optionConflicts may name. */
const FLAG_OF: Record<string, string> = {
  weak: "--weak",
  supervisor: "--supervisor",
  studentMode: "--mode",
  alphaMax: "--alpha-max",
  generativeBase: "--base",
  bootstrapSizes: "--bootstrap-sizes",
  probes: "--probes",
  ...Object.fromEntries(RECIPE_OPTIONS.map((key) => [key, `--${RECIPE_FLAGS[key]}`])),
};

/** Refuses flags the chosen methods or mode would ignore, naming the flag (contract/experiments.ts). */
export function checkFlags(options: MethodOptions): void {
  const conflicts = optionConflicts(options);
  if (conflicts.length > 0) {
    throw new Error(conflicts.map((c) => `${FLAG_OF[c.field] ?? c.field}: ${c.message}`).join("\n"));
  }
}

/** --ladder a,b,…: the imported models' names, or undefined for the lab's ladder. */
export function ladderOption(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const names = value.split(",").map((s) => s.trim()).filter(Boolean);
  if (names.length < 2) {
    throw new UsageError(`--ladder must name at least two imported models, got "${value}"`);
  }
  return names;
}

export function numberOption(name: string, value: string | undefined, integer = false): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || (integer && !Number.isInteger(n))) {
    throw new UsageError(
      `--${name} must be ${integer ? "an integer" : "a number"}, got ${JSON.stringify(value)}`,
    );
  }
  return n;
}

/** The command-line flag of each numeric knob (contract NumericKnobs) that lab w2s, sweep and demo take. */
const KNOB_FLAGS = {
  seed: "seed",
  epochs: "epochs",
  learningRate: "lr",
  batchSize: "batch-size",
  alphaMax: "alpha-max",
  maxExamples: "max-examples",
  promptingShots: "prompting",
} as const;
type Knob = keyof typeof KNOB_FLAGS;

/**
 * Numeric knobs read from text and checked against the API's bounds (contract NumericKnobs): a value the
 * API refuses is refused here by the same rule, in the flag's words ("--lr must be ≤ 1, got 50").
 */
function checkedKnobs(knobs: Partial<Record<Knob, number>>, flags: Partial<Record<Knob, string>>) {
  const checked = NumericKnobs.safeParse(knobs);
  if (checked.success) return knobs;
  const issue = checked.error.issues[0];
  const field = issue.path[0] as Knob;
  throw flagRuleError(flags[field] ?? KNOB_FLAGS[field], field, issue.message, JSON.stringify(knobs[field]));
}

/** The numeric knobs given on the command line (values as parseFlags returns them), checked. */
export function knobOptions(values: Record<string, unknown>): Partial<Record<Knob, number>> {
  const knobs: Partial<Record<Knob, number>> = {};
  for (const [field, flag] of Object.entries(KNOB_FLAGS) as [Knob, string][]) {
    const value = values[flag];
    if (typeof value === "string") knobs[field] = numberOption(flag, value);
  }
  return checkedKnobs(knobs, {});
}

/** `--seeds 0,1,2`: every seed a whole number ≥ 0 (the API's rule), at least one, none twice. */
export function seedsOption(flag: string, value: string): number[] {
  const parts = value.split(",").map((s) => s.trim());
  if (parts.some((s) => s === "")) {
    throw new UsageError(
      `--${flag} must be whole numbers ≥ 0 separated by commas, got ${JSON.stringify(value)}`,
    );
  }
  const seeds = parts.map((text) => checkedKnobs({ seed: numberOption(flag, text) }, { seed: flag }).seed!);
  if (new Set(seeds).size !== seeds.length) {
    throw new UsageError(`--${flag} repeats a seed (${value}): a repeat reruns the same experiment`);
  }
  return seeds;
}

const pct = (x: number) => (Number.isFinite(x) ? (100 * x).toFixed(1).padStart(5) + "%" : "    -");
const num = (x: number | null) => (x === null || !Number.isFinite(x) ? "-" : x.toFixed(2));

const interval = (ci: Interval | null | undefined, f: (x: number) => string) =>
  ci ? ` [${f(ci.lo)}, ${f(ci.hi)}]` : "";

/** The selected PGR's interval, or why there is none (a role cached before its predictions were kept). */
function selectedPgrInterval(r: ExperimentResult): string {
  if (r.selected.ci?.pgr) return interval(r.selected.ci.pgr, num);
  return r.selected.ci
    ? " (no interval: a role came from the cache without its selected-point predictions; --no-cache retrains)"
    : "";
}

/**
 * One model's row: the final and the selected readings with their intervals, then the oracle (chosen on
 * test, an upper bound: no interval), each with its step.
 */
function readingRow(r: ExperimentResult, role: "weak" | "ceiling" | "student"): string {
  const key = `${role}_acc` as const;
  const at = (which: "final" | "selected" | "oracle") => `${pct(r[which][key])} @${r[which].steps[role]}`;
  return `${role.padEnd(9)} ${at("final")}${interval(r.ci[key], pct)}   ${at("selected")}${
    interval(r.selected.ci?.[key], pct)
  }   ${at("oracle")}`;
}

export function formatResult(r: ExperimentResult): string {
  // Each agreement with its interval, by the summary's rule (one seed: Wilson over that part's test examples).
  const agreementCi = agreementIntervals([r]);
  const agreed = (key: keyof ExperimentResult["agreement"]) => {
    const ci = agreementCi[key];
    return `${num(r.agreement[key])}${ci ? ` [${num(ci.lo)}, ${num(ci.hi)}]` : ""}`;
  };
  const lines = [
    `${r.task}: ${r.chain.join(" → ")} (${r.method}, ${r.mode}, seed ${r.seed}; n test ${r.n.test}${
      r.format === "pairwise" ? " pairs" : ""
    })`,
    ...(r.format === "pairwise"
      ? ["          pairwise: accuracy is the share of test pairs each reward model ranks correctly"]
      : []),
    `          final (headline) @step [95% CI]   selected on val @step [95% CI]   oracle (best test) @step`,
    readingRow(r, "weak"),
    readingRow(r, "ceiling"),
    readingRow(r, "student"),
    `PGR       ${num(r.pgr)} [${num(r.ci.pgr.lo)}, ${num(r.ci.pgr.hi)}]${
      r.gap_too_small ? "  gap too small" : ""
    }   selected ${num(r.selected.pgr)}${selectedPgrInterval(r)}   oracle ${num(r.oracle.pgr)}`,
    `          (the student's validation labels are the weak model's: "selected" is the checkpoint that`,
    `          agrees with its supervisor most; the oracle selects on test and is an upper bound only)`,
    `agreement all ${agreed("all")}, supervisor right ${agreed("supervisor_correct")}, ` +
    `supervisor wrong ${agreed("supervisor_wrong")}; weak labels on train2 ${pct(r.weak_label_acc)} right`,
    ...(r.control
      ? [
        `control   ${pct(r.control.ceiling_acc)} @${r.control.step} [${pct(r.control.ci.lo)}, ${
          pct(r.control.ci.hi)
        }]   the strong architecture from random init on train2 ground truth (never pretrained)`,
      ]
      : []),
    ...r.warnings.map((w) => `warning: ${w}`),
  ];
  if (r.prompting) {
    lines.push(
      `prompting (strong, pretrained): zero-shot ${pct(r.prompting.zero_shot)}, ${r.prompting.k}-shot GT ${
        pct(r.prompting.k_shot_gt)
      }, ${r.prompting.k}-shot weak ${pct(r.prompting.k_shot_weak)}`,
    );
  }
  if (r.probes) {
    const kinds = [...new Set(r.probes.map((p) => p.kind))];
    const layers = [...new Set(r.probes.map((p) => p.layer))];
    lines.push(`probe accuracy by layer  ${layers.map((l) => `L${l}`.padStart(6)).join("")}`);
    for (const kind of kinds) {
      lines.push(
        `${kind.padEnd(24)} ${
          layers.map((l) =>
            pct(r.probes!.find((p) => p.kind === kind && p.layer === l)?.accuracy ?? NaN).padStart(6)
          )
            .join("")
        }`,
      );
    }
  }
  lines.push(
    `runs: ${
      r.runs.map((x) => `${x.role} ${x.size} ${x.cached ? "cached" : `${x.seconds.toFixed(1)}s`}`).join(", ")
    }`,
  );
  return lines.join("\n");
}

export async function main(args: string[]): Promise<void> {
  const { values } = parseFlags(args, W2S_OPTIONS);
  if (!SUPERVISORS.includes(values.supervisor as SupervisorSource)) {
    throw new UsageError(`--supervisor must be one of ${SUPERVISORS.join(", ")}, got "${values.supervisor}"`);
  }
  const given = values.supervisor === "given";
  requireFlags(
    values,
    { task: "T", ...given ? {} : { weak: "A (or --supervisor given)" }, strong: "B" },
    "lab w2s --task T --weak A --strong B [--method M] … (lab w2s --help)",
  );
  if (!METHOD_NAMES.includes(values.method as MethodName)) {
    throw new UsageError(`--method must be one of ${METHOD_NAMES.join(", ")}, got "${values.method}"`);
  }
  if (values.mode !== "finetune" && values.mode !== "probe") {
    throw new UsageError(`--mode must be finetune or probe`);
  }
  if (values.base !== undefined && values.base !== "naive" && values.base !== "auxconf") {
    throw new UsageError(`--base must be naive or auxconf`);
  }
  const recipe = recipeOptions(values);
  const knobs = knobOptions(values);
  checkFlags({
    ...recipe,
    supervisor: values.supervisor,
    weak: values.weak,
    methods: [values.method],
    studentMode: values.mode,
    alphaMax: knobs.alphaMax,
    generativeBase: values.base,
    bootstrapSizes: values["bootstrap-sizes"]?.split(","),
    probes: values.probes || undefined,
  });
  const dataDir = Deno.env.get("LAB_DATA_DIR") ?? "./data";
  const weak = values.weak ?? GIVEN_SUPERVISOR;
  const bar = new ProgressBar({ label: `w2s ${weak}→${values.strong}`, total: 1, unit: "steps" });
  const result = await runExperiment({
    task: values.task!,
    weak,
    strong: values.strong!,
    ...(given ? { supervisor: "given" as const } : {}),
    method: values.method as MethodName,
    seed: knobs.seed!,
    mode: values.mode,
    generativeBase: values.base as "naive" | "auxconf" | undefined,
    bootstrapSizes: values["bootstrap-sizes"]?.split(",").map((s) => s.trim()).filter(Boolean),
    epochs: knobs.epochs,
    lr: knobs.learningRate,
    batchSize: knobs.batchSize,
    alphaMax: knobs.alphaMax,
    probes: values.probes,
    promptingShots: knobs.promptingShots,
    maxExamples: knobs.maxExamples,
    evaluateOn: evaluateOnOption(values["evaluate-on"]),
    control: values.control,
    leakage: values.leakage,
    ...recipe,
  }, {
    models: await modelSourceFor(dataDir, ladderOption(values.ladder)),
    cache: values["no-cache"] ? undefined : new ExperimentCache(join(dataDir, "cache")),
    importedTasks: importedTaskLookup(dataDir),
    onProgress: (p) => {
      bar.opts.total = p.total;
      bar.update(p.step, p.stage);
    },
  });
  bar.finish();
  if (values.json) console.log(JSON.stringify(result, (_, v) => (Number.isNaN(v) ? null : v)));
  else console.log(formatResult(result));
}
