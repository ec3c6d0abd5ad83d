/**
 * The roles of an experiment — weak supervisor, bootstrap step, ceiling, student — and how one is
 * trained: by the one finetune loop (or as a probe on frozen features), cached under a key built from
 * everything that determines the role, so experiments that share a role, and a resumed job, read it back.
 */

import type { GptConfig } from "../../kernels/config.ts";
import type { Gpu } from "../../kernels/device.ts";
import type { GptModel } from "../../kernels/gpt.ts";
import type { SupervisorSource } from "../contract/experiments.ts";
import type { StudentMode } from "../contract/methods.ts";
import type { TaskFormat } from "../tasks/types.ts";
import {
  type CurvePoint,
  FINETUNE_RECIPE,
  type FinetuneHyper,
  type FinetuneRecipe,
  RECIPE_OPTIONS,
  type Role,
  type RoleRun,
} from "../contract/results.ts";
import { CACHE_VERSION, type ExperimentCache, hashNumbers } from "./cache.ts";
import {
  type EncodedSet,
  finetuneClassifier,
  type FinetuneResult,
  probeClassifier,
  selectExamples,
  totalSteps,
} from "./finetune.ts";
import { sizeHyper } from "./ladder.ts";
import type { LoadedModel } from "./model-source.ts";
import { modelProbes } from "./saliency.ts";

export type SplitName = "train1" | "train2" | "validation" | "test";
/** The task's splits tokenized and padded for one model's context length. */
export type Sets = Record<SplitName, EncodedSet>;
/** Hard labels of each split. */
export type SplitLabels = Record<SplitName, number[]>;

/** The experiment a role belongs to: what identifies it, and the finetune overrides it asks for. */
export interface RoleExperiment extends FinetuneRecipe {
  task: string;
  /** Seed of the task split and of the training order. */
  seed: number;
  maxExamples?: number;
  /** Readings on validation instead of test (w2s.ts): a different "test" set, so a different cache entry. */
  evaluateOn?: "test" | "validation";
  probes?: boolean;
  epochs?: number;
  lr?: number;
  batchSize?: number;
  alphaMax?: number;
  /** The task's format: pairwise tasks start from their own defaults (ladder.ts PAIRWISE_HYPER). */
  format?: TaskFormat;
  /** "given": the task's own weak labels supervise, and train2 holds all of train (tasks/load.ts). */
  supervisor?: SupervisorSource;
}

/** A size's finetune settings in one role: the seed salt gives each role its own data order. */
export function roleHyper(
  size: string,
  experiment: RoleExperiment,
  seedSalt: number,
): FinetuneHyper & { alphaMax: number } {
  const { embeddings, headInit, decayTo, ...hyper } = sizeHyper(size, {
    epochs: experiment.epochs,
    lr: experiment.lr,
    batchSize: experiment.batchSize,
    alphaMax: experiment.alphaMax,
    embeddings: experiment.embeddings,
    headInit: experiment.headInit,
    decayTo: experiment.decayTo,
  }, experiment.format);
  const recipe = recipeChanges({ embeddings, headInit, decayTo });
  return { ...hyper, ...recipe, evalEvery: 0, seed: experiment.seed * 1000 + seedSalt };
}

/**
 * The recipe options that differ from their default (the first value): an absent option means the
 * default, so plain finetuning keeps the hyper, and the cache key, it had before the options existed.
 */
function recipeChanges(recipe: FinetuneRecipe): FinetuneRecipe {
  const isDefault = (key: typeof RECIPE_OPTIONS[number]) =>
    recipe[key] === undefined || recipe[key] === FINETUNE_RECIPE[key].values[0];
  return Object.fromEntries(RECIPE_OPTIONS.filter((k) => !isDefault(k)).map((k) => [k, recipe[k]]));
}

/** One role to train: its model, what it learns from and what it predicts. */
export interface RoleSpec {
  role: Role;
  description: string;
  model: LoadedModel;
  /** Starting parameters other than the checkpoint's (after LM finetuning), and their content hash. */
  params?: Float32Array;
  paramsHash?: string;
  train: SplitName;
  /** Train on these rows of the split only (a bootstrap fold). */
  trainIndices?: number[];
  targets: number[];
  validationLabels: number[];
  predict: SplitName[];
  /** Predict only these rows of the training split (the other fold). */
  predictIndices?: number[];
  loss: "ce" | "auxconf";
  mode: StudentMode;
  seedSalt: number;
  /** Steps this role takes in the experiment's progress plan. */
  plannedSteps: number;
  /** The per-layer probes taken of the finetuned model when the experiment asks for probes. */
  probeKind?: "ft(weak)+lp(gt)" | "ft(gt)";
}

/** What a role is trained on: the one place where a role's targets and labels meet the training loop. */
export interface RoleTraining {
  role: Role;
  size: string;
  mode: StudentMode;
  /** Where training starts: the checkpoint's content hash, or what replaced it (LM finetuning, random init). */
  startsFrom: string;
  /** p(class 1) per training example: ground truth (0/1) or a supervisor's soft labels. */
  trainTargets: readonly number[];
  /** Hard labels of validation the role may select on: ground truth, or its supervisor's. */
  validationLabels: readonly number[];
  /** Test ground truth: scored along the curve for the readings and the oracle only. */
  testLabels: readonly number[];
  /** Splits (or fold rows) whose p(class 1) the role returns, by name. */
  predict: Record<string, EncodedSet>;
}

/**
 * Trains one role and returns its curve, readings and predictions. The default finetunes (or probes)
 * the GPT; tests pass a stand-in to check what each role receives without training anything.
 */
export type RoleTrainer = (
  input: RoleTraining,
  run: () => Promise<FinetuneResult>,
) => Promise<FinetuneResult>;

/** What every role of one experiment shares. */
export interface RoleContext {
  /** Replaces the training (tests); by default the role is trained by finetuneClassifier/probeClassifier. */
  trainer?: RoleTrainer;
  gpu: Gpu;
  experiment: RoleExperiment;
  setsFor: (config: GptConfig) => Sets;
  /** Ground-truth labels of each split. */
  gt: SplitLabels;
  cache?: ExperimentCache;
  signal?: AbortSignal;
  /** The role being trained is `step` of its planned steps into `stage`. */
  report: (stage: string, step?: number) => void;
  /** A stage finished: its planned steps are done. */
  advance: (steps: number, stage: string) => void;
  /** Live curve point of the role being trained. */
  onEval?: (role: Role, size: string, point: CurvePoint) => void;
  /** A role finished (trained or read from the cache). */
  onRun: (run: RoleRun) => Promise<void>;
}

export interface TrainedRole extends FinetuneResult {
  cached: boolean;
}

/**
 * The cache key of a role: everything that determines it. The stored entries under <dataDir>/cache are
 * keyed by it, so its fields and their values must not change without bumping CACHE_VERSION. The
 * finetuning recipe is part of `hyper` (roleHyper leaves default options out, so old keys still hold).
 */
export function roleCacheKey(experiment: RoleExperiment, spec: RoleSpec, hyper: FinetuneHyper) {
  return {
    v: CACHE_VERSION,
    role: spec.role,
    task: experiment.task,
    splitSeed: experiment.seed,
    maxExamples: experiment.maxExamples ?? null,
    // Absent for test, so the keys of every run before the option existed still hold.
    evaluateOn: experiment.evaluateOn === "validation" ? "validation" : undefined,
    // Absent for a trained supervisor; "given" makes train2 all of train, a different training set.
    supervisor: experiment.supervisor === "given" ? "given" : undefined,
    size: spec.model.size,
    checkpoint: spec.paramsHash ?? spec.model.hash,
    mode: spec.mode,
    hyper: spec.mode === "finetune" ? hyper : null,
    train: spec.train,
    trainIndices: spec.trainIndices ? hashNumbers(spec.trainIndices) : null,
    targets: hashNumbers(spec.targets),
    validationLabels: hashNumbers(spec.validationLabels),
    predict: spec.predict,
    predictIndices: spec.predictIndices ? hashNumbers(spec.predictIndices) : null,
    probes: spec.probeKind && experiment.probes && spec.mode === "finetune" ? spec.probeKind : null,
  };
}

/** One role: read from the cache, or trained and stored; then counted as done and reported. */
export async function trainRole(ctx: RoleContext, spec: RoleSpec): Promise<TrainedRole> {
  const { role, model } = spec;
  const sets = ctx.setsFor(model.config);
  const train = subset(sets[spec.train], spec.trainIndices);
  const { hyper, steps } = roleFinetuneHyper(ctx.experiment, spec, train.n);
  const key = roleCacheKey(ctx.experiment, spec, hyper);
  const stage = `${role} ${model.size}`;
  const compute = () => computeRole(ctx, spec, { sets, train, hyper, steps, stage, probeKind: key.probes });
  const { value, cached } = ctx.cache
    ? await ctx.cache.through(`run-${role}`, key, compute)
    : { value: await compute(), cached: false };
  ctx.advance(spec.plannedSteps, stage);
  await ctx.onRun({
    role,
    size: model.size,
    description: spec.description,
    validation: spec.role === "student" || spec.role === "bootstrap" ? "supervisor labels" : "ground truth",
    mode: spec.mode,
    cached,
    hyper: spec.mode === "finetune" ? hyper : null,
    steps: value.steps,
    microBatch: value.microBatch,
    seconds: value.seconds,
    final: value.final,
    selected: value.selected,
    oracle: value.oracle,
    curve: value.curve,
  });
  return { ...value, cached };
}

/** The role's finetune settings (the aux loss only for an auxconf student), evaluated ~12 times a run. */
function roleFinetuneHyper(
  experiment: RoleExperiment,
  spec: RoleSpec,
  trainExamples: number,
): { hyper: FinetuneHyper; steps: number } {
  const sized = roleHyper(spec.model.size, experiment, spec.seedSalt);
  const hyper: FinetuneHyper = {
    ...sized,
    alphaMax: spec.loss === "auxconf" ? sized.alphaMax : undefined,
    evalEvery: 0,
  };
  const steps = totalSteps(trainExamples, hyper);
  hyper.evalEvery = Math.max(1, Math.round(steps / 12));
  return { hyper, steps };
}

/** The rows `indices` of a set (all of it without indices). */
function subset(set: EncodedSet, indices?: number[]): EncodedSet {
  return indices ? selectExamples(set, indices) : set;
}

/** Trains the role: the whole model, or a probe on its frozen features. */
async function computeRole(
  ctx: RoleContext,
  spec: RoleSpec,
  run: {
    sets: Sets;
    train: EncodedSet;
    hyper: FinetuneHyper;
    steps: number;
    stage: string;
    probeKind: RoleSpec["probeKind"] | null;
  },
): Promise<FinetuneResult> {
  const { model } = spec;
  const { sets } = run;
  const { gt } = ctx;
  const predict = Object.fromEntries(
    spec.predict.map((
      name,
    ) => [name, name === spec.train ? subset(sets[name], spec.predictIndices) : sets[name]]),
  );
  const common = {
    gpu: ctx.gpu,
    config: model.config,
    params: spec.params ?? model.params,
    train: run.train,
    trainTargets: spec.targets,
    validation: sets.validation,
    validationLabels: spec.validationLabels,
    test: sets.test,
    testLabels: gt.test,
    predict,
    signal: ctx.signal,
  };
  const probeKind = run.probeKind;
  const train = () =>
    spec.mode === "probe" ? probeClassifier(common) : finetuneClassifier({
      ...common,
      hyper: run.hyper,
      onStep: (step) => ctx.report(run.stage, Math.round((step / run.steps) * spec.plannedSteps)),
      onEval: (point) => ctx.onEval?.(spec.role, model.size, point),
      afterTraining: probeKind
        ? (m: GptModel) => modelProbes(m, probeKind, sets.train2, gt.train2, sets.test, gt.test)
        : undefined,
    });
  if (!ctx.trainer) return await train();
  return await ctx.trainer({
    role: spec.role,
    size: model.size,
    mode: spec.mode,
    startsFrom: spec.paramsHash ?? model.hash,
    trainTargets: common.trainTargets,
    validationLabels: common.validationLabels,
    testLabels: common.testLabels,
    predict,
  }, train);
}
