/**
 * One weak→strong experiment (shared/DESIGN.md, "The science"), end to end:
 *   weak      size A finetuned on train1 ground truth; its soft labels on train2, validation and test;
 *   ceiling   size B trained on train2 ground truth;
 *   student   size B trained on train2 weak labels with the chosen method (methods.ts);
 * then test accuracies, PGR, agreement (all / supervisor right / supervisor wrong), the ground-truth
 * early-stopping oracle beside the honest readings, intervals, and optionally the prompting baselines
 * and per-layer probe saliency. Finished weak models, ceilings, students and weak labels are cached
 * (cache.ts), so experiments that share them — and a resumed job — do not train them again.
 *
 * Selection is honest: every model is read at its best VALIDATION point, where validation is scored
 * against the labels that role may see (ground truth for weak and ceiling; the supervisor's hard
 * labels for a student or a bootstrap step). Test accuracy along the curve only feeds the oracle.
 * Student modes: "finetune" (the whole model) or "probe" (frozen features of the last layer + converged
 * logistic regression); the ceiling uses the same mode as the student, the weak model is always finetuned.
 */

import { createHash } from "node:crypto";
import { join } from "node:path";
import { loadCheckpoint } from "../../kernels/checkpoint.ts";
import type { GptConfig } from "../../kernels/config.ts";
import { getGpu, type Gpu } from "../../kernels/device.ts";
import type { GptModel } from "../../kernels/gpt.ts";
import { parseTaskJsonl, splitExamples } from "../tasks/jsonl.ts";
import { seededRandom, shuffled } from "../../kernels/random.ts";
import { BUILTIN_TASKS, loadBuiltinTask } from "../tasks/registry.ts";
import type { TaskExample, TaskSplits } from "../tasks/types.ts";
import type { Tokenizer } from "../corpus/tokenizer.ts";
import { splitByGroup } from "../tasks/splits.ts";
import { worldRegionFromWorld } from "../tasks/world-region.ts";
import type { World } from "../corpus/world.ts";
import { ExperimentCache, hashNumbers } from "./cache.ts";
import {
  type CurvePoint,
  type EncodedSet,
  featuresOf,
  finetuneClassifier,
  type FinetuneHyper,
  finetuneLm,
  type FinetuneResult,
  padSet,
  probeClassifier,
  tokenizeTexts,
  totalSteps,
} from "./finetune.ts";
import { LADDER } from "./ladder.ts";
import {
  type Agreement,
  agreement,
  gapNoise,
  gapTooSmall,
  hardLabels,
  type Interval,
  pgr,
  quantile,
  wilsonInterval,
} from "./metrics.ts";
import { type MethodName, methodSpec } from "./methods.ts";
import { promptFormatFor, promptingBaseline } from "./prompting.ts";
import { type LayerProbe, modelProbes, probeLayers } from "./saliency.ts";

// ---------- models ----------

export interface LoadedModel {
  size: string;
  config: GptConfig;
  params: Float32Array;
  tokenizer: Tokenizer;
  /** Content hash of the checkpoint (part of every cache key). */
  hash: string;
}

/** Where pretrained models come from: the ladder on disk, or tiny models in tests. */
export interface ModelSource {
  /** Size names, smallest first (bootstrap walks through them). */
  sizes: readonly string[];
  load(size: string): Promise<LoadedModel>;
  /** The knowledge world these models were pretrained on (world tasks are built from it). */
  world?: () => Promise<World>;
}

/** The pretrained ladder under `<dataDir>/models/<size>/` with the lab corpus's tokenizer. */
export function ladderModelSource(dataDir: string): ModelSource {
  const loaded = new Map<string, Promise<LoadedModel>>();
  let tokenizer: Promise<Tokenizer> | undefined;
  const load = async (size: string): Promise<LoadedModel> => {
    const dir = join(dataDir, "models", size);
    let checkpoint;
    try {
      checkpoint = await loadCheckpoint(dir);
    } catch (err) {
      throw new Error(
        `size "${size}" has no pretrained checkpoint in ${dir} (${(err as Error).message}); ` +
          `run: deno task lab pretrain --size ${size}`,
      );
    }
    // The corpus module is loaded lazily: tests with their own models never build a corpus.
    const { loadLabCorpus } = await import("./pretrain.ts");
    tokenizer ??= loadLabCorpus(dataDir).then((c) => c.tokenizer);
    const tok = await tokenizer;
    if (checkpoint.meta.tokenizer !== undefined && checkpoint.meta.tokenizer !== tok.id) {
      throw new Error(
        `checkpoint ${dir} was trained with tokenizer ${checkpoint.meta.tokenizer}, the lab corpus uses ${tok.id}`,
      );
    }
    const bytes = await Deno.readFile(join(dir, "model.safetensors"));
    const hash = createHash("sha256").update(bytes).digest("hex").slice(0, 24);
    return { size, config: checkpoint.config, params: checkpoint.params, tokenizer: tok, hash };
  };
  return {
    sizes: LADDER.map((s) => s.name),
    async world() {
      const { labWorld } = await import("./pretrain.ts");
      return (await labWorld(dataDir)).world;
    },
    load(size) {
      let model = loaded.get(size);
      if (!model) {
        model = load(size);
        model.catch(() => loaded.delete(size));
        loaded.set(size, model);
      }
      return model;
    },
  };
}

// ---------- tasks ----------

/** Examples of an imported task by name (the job handler reads them from the database). */
export type ImportedTaskLookup = (name: string) => Promise<TaskExample[] | undefined>;

/** A built-in task, an imported one, or a path to a JSONL file (bad lines are named by number). */
export async function loadTaskSplits(
  task: string,
  seed: number,
  imported?: ImportedTaskLookup,
  world?: World,
): Promise<TaskSplits> {
  // The world task must ask about the entities the ladder saw: build it from the ladder's own world
  // (the registry's split: same salt, fractions and balancing).
  if (task === "world-region" && world) {
    const source = worldRegionFromWorld(world);
    return splitByGroup(source.examples, { seed, salt: task, fractions: source.fractions, balance: true })
      .splits;
  }
  if (BUILTIN_TASKS.some((t) => t.name === task)) return await loadBuiltinTask(task, { seed });
  if (task.endsWith(".jsonl")) {
    let text: string;
    try {
      text = await Deno.readTextFile(task);
    } catch (err) {
      throw new Error(`cannot read task file ${task}: ${(err as Error).message}`);
    }
    try {
      return splitExamples(parseTaskJsonl(text), seed);
    } catch (err) {
      throw new Error(`${task}: ${(err as Error).message}`);
    }
  }
  const examples = await imported?.(task);
  if (examples) return splitExamples(examples, seed);
  throw new Error(
    `unknown task "${task}"; built-in tasks are: ${BUILTIN_TASKS.map((t) => t.name).join(", ")} ` +
      `(or import one with: deno task lab import --name N --file F.jsonl, or pass a .jsonl path)`,
  );
}

/** At most `max` examples per split, a seeded sample (quick runs and tests). */
function capSplits(splits: TaskSplits, max: number | undefined, seed: number): TaskSplits {
  if (!max) return splits;
  const cap = (list: TaskExample[], name: string) =>
    list.length <= max ? list : shuffled(list, seededRandom(seed, `cap:${name}`)).slice(0, max);
  return {
    train1: cap(splits.train1, "train1"),
    train2: cap(splits.train2, "train2"),
    validation: cap(splits.validation, "validation"),
    test: cap(splits.test, "test"),
  };
}

// ---------- hyperparameters ----------

export interface SizeHyper {
  epochs: number;
  lr: number;
  batchSize: number;
  /** α_max of the aux confidence loss when this size is the student. */
  alphaMax: number;
}

const BASE_HYPER: SizeHyper = { epochs: 4, lr: 1e-3, batchSize: 32, alphaMax: 0.5 };

/**
 * Finetuning settings per ladder size (chosen on validation, never on test). The largest students use
 * α_max = 0.75 as in the paper.
 */
export const FINETUNE_BY_SIZE: Record<string, Partial<SizeHyper>> = {
  nano: { lr: 2e-3 },
  micro: { lr: 1e-3 },
  mini: { lr: 1e-3 },
  small: { lr: 5e-4 },
  medium: { lr: 5e-4, alphaMax: 0.75 },
  large: { lr: 2e-4, alphaMax: 0.75 },
  xl: { lr: 1e-4, alphaMax: 0.75 },
};

export function sizeHyper(size: string, overrides: Partial<SizeHyper> = {}): SizeHyper {
  const defined = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined));
  return { ...BASE_HYPER, ...FINETUNE_BY_SIZE[size], ...defined };
}

// ---------- the experiment ----------

export type StudentMode = "finetune" | "probe";

export interface ExperimentOptions {
  task: string;
  weak: string;
  strong: string;
  method: MethodName;
  /** Seed of the task split and of the training order. */
  seed: number;
  mode?: StudentMode;
  /** Base loss of the generative method. */
  generativeBase?: "naive" | "auxconf";
  /** Intermediate sizes of the bootstrap method (default: every ladder size between weak and strong). */
  bootstrapSizes?: string[];
  epochs?: number;
  lr?: number;
  batchSize?: number;
  alphaMax?: number;
  /** Epochs of LM finetuning for the generative method. */
  lmEpochs?: number;
  /** Per-layer linear-probe saliency. */
  probes?: boolean;
  /** Zero-shot and k-shot prompting baselines of the pretrained strong model (k demonstrations). */
  promptingShots?: number;
  /** Use at most this many examples per split (quick runs, tests). */
  maxExamples?: number;
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
  final: FinetuneResult["final"];
  selected: FinetuneResult["selected"];
  oracle: FinetuneResult["oracle"];
  curve: CurvePoint[];
}

export interface Progress {
  step: number;
  total: number;
  stage: string;
}

export interface ExperimentDeps {
  models: ModelSource;
  gpu?: Gpu;
  cache?: ExperimentCache;
  importedTasks?: ImportedTaskLookup;
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
  /** A role finished (trained or read from the cache). */
  onRun?: (run: RoleRun) => void | Promise<void>;
  /** Live curve point of the role being trained. */
  onEval?: (role: Role, size: string, point: CurvePoint) => void;
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

interface Sets {
  train1: EncodedSet;
  train2: EncodedSet;
  validation: EncodedSet;
  test: EncodedSet;
}

const labelsOf = (list: TaskExample[]) => list.map((e) => e.hard_label as number);
const CACHE_VERSION = 1;

/** Paired bootstrap over test examples of PGR (resample examples, recompute the three accuracies). */
export function pgrBootstrap(
  gt: readonly number[],
  weakPred: readonly number[],
  ceilingPred: readonly number[],
  studentPred: readonly number[],
  resamples = 1000,
  seed = 0,
): Interval {
  const random = seededRandom(seed, "pgr-bootstrap");
  const n = gt.length;
  const values: number[] = [];
  for (let r = 0; r < resamples; r++) {
    let w = 0, c = 0, s = 0;
    for (let i = 0; i < n; i++) {
      const j = Math.floor(random() * n);
      w += weakPred[j] === gt[j] ? 1 : 0;
      c += ceilingPred[j] === gt[j] ? 1 : 0;
      s += studentPred[j] === gt[j] ? 1 : 0;
    }
    const value = pgr(w / n, c / n, s / n);
    if (Number.isFinite(value)) values.push(value);
  }
  values.sort((a, b) => a - b);
  return { lo: quantile(values, 0.025), hi: quantile(values, 0.975) };
}

export async function runExperiment(
  opts: ExperimentOptions,
  deps: ExperimentDeps,
): Promise<ExperimentResult> {
  const started = performance.now();
  const method = methodSpec(opts.method, opts.generativeBase);
  const mode = opts.mode ?? "finetune";
  const { models } = deps;
  const cache = deps.cache;
  const rankOf = (size: string) => {
    const rank = models.sizes.indexOf(size);
    if (rank < 0) throw new Error(`unknown size "${size}"; sizes are: ${models.sizes.join(", ")}`);
    return rank;
  };
  if (rankOf(opts.weak) >= rankOf(opts.strong)) {
    throw new Error(
      `the weak model must be smaller than the strong one (weak ${opts.weak}, strong ${opts.strong})`,
    );
  }
  const chain = method.bootstrap
    ? (opts.bootstrapSizes ?? models.sizes.slice(rankOf(opts.weak) + 1, rankOf(opts.strong)))
    : [];
  for (const size of chain) {
    if (!(rankOf(size) > rankOf(opts.weak) && rankOf(size) < rankOf(opts.strong))) {
      throw new Error(`bootstrap size ${size} is not between ${opts.weak} and ${opts.strong}`);
    }
  }
  const world = opts.task === "world-region" ? await models.world?.() : undefined;
  const gpu = deps.gpu ?? await getGpu();
  const splits = capSplits(
    await loadTaskSplits(opts.task, opts.seed, deps.importedTasks, world),
    opts.maxExamples,
    opts.seed,
  );
  const weakModel = await models.load(opts.weak);
  const strongModel = await models.load(opts.strong);
  const chainModels = await Promise.all(chain.map((s) => models.load(s)));
  for (const m of [strongModel, ...chainModels]) {
    if (m.tokenizer.id !== weakModel.tokenizer.id) {
      throw new Error(`sizes ${weakModel.size} and ${m.size} use different tokenizers`);
    }
  }
  const tokenizer = weakModel.tokenizer;
  const ids = {
    train1: tokenizeTexts(tokenizer, splits.train1.map((e) => e.txt)),
    train2: tokenizeTexts(tokenizer, splits.train2.map((e) => e.txt)),
    validation: tokenizeTexts(tokenizer, splits.validation.map((e) => e.txt)),
    test: tokenizeTexts(tokenizer, splits.test.map((e) => e.txt)),
  };
  const longest = Math.max(...Object.values(ids).flat().map((r) => r.length));
  const setsFor = (cfg: GptConfig): Sets => {
    const T = Math.min(longest, cfg.contextLength);
    return {
      train1: padSet(ids.train1, T),
      train2: padSet(ids.train2, T),
      validation: padSet(ids.validation, T),
      test: padSet(ids.test, T),
    };
  };
  const gt = {
    train1: labelsOf(splits.train1),
    train2: labelsOf(splits.train2),
    validation: labelsOf(splits.validation),
    test: labelsOf(splits.test),
  };
  const n = {
    train1: gt.train1.length,
    train2: gt.train2.length,
    validation: gt.validation.length,
    test: gt.test.length,
  };
  const hyperOf = (size: string, seedSalt: number): FinetuneHyper & { alphaMax: number } => {
    const h = sizeHyper(size, {
      epochs: opts.epochs,
      lr: opts.lr,
      batchSize: opts.batchSize,
      alphaMax: opts.alphaMax,
    });
    return { ...h, warmupFraction: 0.1, weightDecay: 0.01, evalEvery: 0, seed: opts.seed * 1000 + seedSalt };
  };
  const alphaMax = method.loss === "auxconf" ? hyperOf(opts.strong, 0).alphaMax : null;
  const lmEpochs = opts.lmEpochs ?? 2;
  const unlabeled = [...ids.train1, ...ids.train2];

  // Progress in training steps (cached stages jump ahead; probe and prompt stages count 1 each).
  const stepsOf = (size: string, examples: number, trained: boolean) => {
    const h = hyperOf(size, 0);
    return trained ? totalSteps(examples, h) : 1;
  };
  const trunk = mode === "finetune";
  const plan = {
    weak: stepsOf(opts.weak, n.train1, true),
    generative: method.generative
      ? lmEpochs * Math.ceil(unlabeled.length / hyperOf(opts.strong, 0).batchSize)
      : 0,
    chain: chain.map((s) => 2 * stepsOf(s, Math.ceil(n.train2 / 2), true)),
    ceiling: stepsOf(opts.strong, n.train2, trunk),
    student: stepsOf(opts.strong, n.train2, trunk),
    extras: (opts.probes ? 1 : 0) + (opts.promptingShots !== undefined ? 1 : 0),
  };
  const total = plan.weak + plan.generative + plan.chain.reduce((a, b) => a + b, 0) + plan.ceiling +
    plan.student +
    plan.extras;
  let done = 0;
  const report = (stage: string, step = 0) =>
    deps.onProgress?.({ step: Math.min(total, done + step), total, stage });
  const advance = (steps: number, stage: string) => {
    done += steps;
    report(stage);
  };

  const runs: RoleRun[] = [];
  const finishRun = async (run: RoleRun) => {
    runs.push(run);
    await deps.onRun?.(run);
  };

  interface Trained extends FinetuneResult {
    cached?: boolean;
  }

  /** One role: cached by everything that determines it. */
  const trainRole = async (args: {
    role: Role;
    description: string;
    model: LoadedModel;
    params?: Float32Array;
    paramsHash?: string;
    train: keyof Sets;
    trainIndices?: number[];
    targets: number[];
    validationLabels: number[];
    predict: (keyof Sets)[];
    predictIndices?: number[];
    loss: "ce" | "auxconf";
    mode: StudentMode;
    seedSalt: number;
    plannedSteps: number;
    probeKind?: "ft(weak)+lp(gt)" | "ft(gt)";
  }): Promise<Trained> => {
    const { role, model } = args;
    const hyper = hyperOf(model.size, args.seedSalt);
    const fh: FinetuneHyper = {
      ...hyper,
      alphaMax: args.loss === "auxconf" ? hyper.alphaMax : undefined,
      evalEvery: 0,
    };
    const sets = setsFor(model.config);
    const subset = (set: EncodedSet, indices?: number[]): EncodedSet =>
      indices
        ? padSet(indices.map((i) => [...set.tokens.subarray(i * set.T, i * set.T + set.lengths[i])]), set.T)
        : set;
    const train = subset(sets[args.train], args.trainIndices);
    const steps = totalSteps(train.n, fh);
    fh.evalEvery = Math.max(1, Math.round(steps / 12));
    const key = {
      v: CACHE_VERSION,
      role,
      task: opts.task,
      splitSeed: opts.seed,
      maxExamples: opts.maxExamples ?? null,
      size: model.size,
      checkpoint: args.paramsHash ?? model.hash,
      mode: args.mode,
      hyper: args.mode === "finetune" ? fh : null,
      train: args.train,
      trainIndices: args.trainIndices ? hashNumbers(args.trainIndices) : null,
      targets: hashNumbers(args.targets),
      validationLabels: hashNumbers(args.validationLabels),
      predict: args.predict,
      predictIndices: args.predictIndices ? hashNumbers(args.predictIndices) : null,
      probes: args.probeKind && opts.probes && args.mode === "finetune" ? args.probeKind : null,
    };
    const stage = `${role} ${model.size}`;
    const compute = async (): Promise<Trained> => {
      const predict = Object.fromEntries(
        args.predict.map((
          name,
        ) => [name, name === args.train ? subset(sets[name], args.predictIndices) : sets[name]]),
      );
      const common = {
        gpu,
        config: model.config,
        params: args.params ?? model.params,
        train,
        trainTargets: args.targets,
        validation: sets.validation,
        validationLabels: args.validationLabels,
        test: sets.test,
        testLabels: gt.test,
        predict,
        signal: deps.signal,
      };
      if (args.mode === "probe") return await probeClassifier(common);
      const probeKind = key.probes;
      return await finetuneClassifier({
        ...common,
        hyper: fh,
        onStep: (step) => report(stage, Math.round((step / steps) * args.plannedSteps)),
        onEval: (point) => deps.onEval?.(role, model.size, point),
        afterTraining: probeKind
          ? (m: GptModel) => modelProbes(m, probeKind, sets.train2, gt.train2, sets.test, gt.test)
          : undefined,
      });
    };
    const { value, cached } = cache
      ? await cache.through(`run-${role}`, key, compute)
      : { value: await compute(), cached: false };
    advance(args.plannedSteps, stage);
    await finishRun({
      role,
      size: model.size,
      description: args.description,
      mode: args.mode,
      cached,
      hyper: args.mode === "finetune" ? fh : null,
      steps: value.steps,
      seconds: value.seconds,
      final: value.final,
      selected: value.selected,
      oracle: value.oracle,
      curve: value.curve,
    });
    return { ...value, cached };
  };

  // 1. The weak supervisor on train1 ground truth; its soft labels on train2, validation and test.
  const weak = await trainRole({
    role: "weak",
    description: "train1 ground truth",
    model: weakModel,
    train: "train1",
    targets: gt.train1,
    validationLabels: gt.validation,
    predict: ["train2", "validation", "test"],
    loss: "ce",
    mode: "finetune",
    seedSalt: 1,
    plannedSteps: plan.weak,
  });
  let labels = weak.predictions.train2;
  let validationLabels = hardLabels(weak.predictions.validation) as number[];
  const weakTestPred = hardLabels(weak.predictions.test) as number[];
  const weakLabelAcc = hardLabels(labels).filter((p, i) => p === gt.train2[i]).length / n.train2;

  // 2. Bootstrap: each intermediate size learns the previous labels (2-fold cross-fitting, so no model
  //    labels the examples it trained on) and labels train2 for the next.
  const random = seededRandom(opts.seed, "bootstrap-folds");
  const order = shuffled([...Array(n.train2).keys()], random);
  const folds = [
    order.slice(0, Math.ceil(n.train2 / 2)).sort((a, b) => a - b),
    order.slice(Math.ceil(n.train2 / 2)).sort((a, b) => a - b),
  ];
  for (let c = 0; c < chainModels.length; c++) {
    const model = chainModels[c];
    const next = labels.slice();
    const validationSum = new Array(n.validation).fill(0);
    for (let f = 0; f < 2; f++) {
      const trainIdx = folds[f];
      const otherIdx = folds[1 - f];
      const step = await trainRole({
        role: "bootstrap",
        description: `train2 fold ${f + 1}/2, labels of ${c === 0 ? opts.weak : chain[c - 1]}`,
        model,
        train: "train2",
        trainIndices: trainIdx,
        targets: trainIdx.map((i) => labels[i]),
        validationLabels,
        predict: ["train2", "validation"],
        predictIndices: otherIdx,
        loss: "ce",
        mode: "finetune",
        seedSalt: 10 + c * 2 + f,
        plannedSteps: plan.chain[c] / 2,
      });
      otherIdx.forEach((i, j) => (next[i] = step.predictions.train2[j]));
      step.predictions.validation.forEach((p, i) => (validationSum[i] += p / 2));
    }
    labels = next;
    validationLabels = hardLabels(validationSum) as number[];
  }

  // 3. Generative finetuning of the strong model on the unlabeled train texts (student and ceiling).
  let strongParams = strongModel.params;
  let strongHash = strongModel.hash;
  if (method.generative) {
    const lmKey = {
      v: CACHE_VERSION,
      task: opts.task,
      splitSeed: opts.seed,
      maxExamples: opts.maxExamples ?? null,
      size: opts.strong,
      checkpoint: strongModel.hash,
      lmEpochs,
    };
    const hyper = hyperOf(opts.strong, 2);
    const compute = async () => {
      const result = await finetuneLm({
        gpu,
        config: strongModel.config,
        params: strongModel.params,
        texts: unlabeled,
        epochs: lmEpochs,
        lr: hyper.lr,
        batchSize: hyper.batchSize,
        seed: hyper.seed,
        signal: deps.signal,
        onStep: (step) => report(`generative ${opts.strong}`, step),
      });
      return { params: [...result.params], loss: result.loss };
    };
    const { value } = cache
      ? await cache.through("generative-lm", lmKey, compute)
      : { value: await compute() };
    strongParams = Float32Array.from(value.params);
    strongHash = hashNumbers(strongParams);
    advance(plan.generative, `generative ${opts.strong}`);
  }

  // 4. The ceiling: the strong model on train2 ground truth.
  const ceiling = await trainRole({
    role: "ceiling",
    description: method.generative ? "train2 ground truth, after LM finetuning" : "train2 ground truth",
    model: strongModel,
    params: strongParams,
    paramsHash: strongHash,
    train: "train2",
    targets: gt.train2,
    validationLabels: gt.validation,
    predict: ["test"],
    loss: "ce",
    mode,
    seedSalt: 3,
    plannedSteps: plan.ceiling,
    probeKind: "ft(gt)",
  });

  // 5. The student: the strong model on the (last) supervisor's soft labels.
  const student = await trainRole({
    role: "student",
    description: `train2 labels of ${chain.at(-1) ?? opts.weak} (${opts.method}${
      method.loss === "auxconf" ? ", aux confidence loss" : ""
    })`,
    model: strongModel,
    params: strongParams,
    paramsHash: strongHash,
    train: "train2",
    targets: labels,
    validationLabels,
    predict: ["test"],
    loss: method.loss,
    mode,
    seedSalt: 4,
    plannedSteps: plan.student,
    probeKind: "ft(weak)+lp(gt)",
  });

  // 6. Readings, agreement and intervals.
  const ceilingTestPred = hardLabels(ceiling.predictions.test) as number[];
  const studentTestPred = hardLabels(student.predictions.test) as number[];
  const readings = (w: number, c: number, s: number): Readings => ({
    weak_acc: w,
    ceiling_acc: c,
    student_acc: s,
    pgr: pgr(w, c, s),
  });
  const selected = readings(weak.selected.testAcc, ceiling.selected.testAcc, student.selected.testAcc);
  const noise = gapNoise(selected.weak_acc, selected.ceiling_acc, n.test);
  const wilson = (acc: number) => wilsonInterval(Math.round(acc * n.test), n.test);

  let prompting: PromptingReport | undefined;
  if (opts.promptingShots !== undefined) {
    const format = promptFormatFor(opts.task, world);
    const base = {
      gpu,
      config: strongModel.config,
      params: strongModel.params,
      tokenizer,
      format,
      test: splits.test,
    };
    const k = opts.promptingShots;
    const zero = await promptingBaseline(base);
    const withGt = await promptingBaseline({
      ...base,
      demos: { examples: splits.train2, labels: gt.train2, k, seed: opts.seed },
    });
    const withWeak = await promptingBaseline({
      ...base,
      demos: { examples: splits.train2, labels: hardLabels(weak.predictions.train2), k, seed: opts.seed },
    });
    prompting = {
      k,
      zero_shot: zero.accuracy,
      k_shot_gt: withGt.accuracy,
      k_shot_weak: withWeak.accuracy,
      positive_rate: {
        zero_shot: zero.positiveRate,
        k_shot_gt: withGt.positiveRate,
        k_shot_weak: withWeak.positiveRate,
      },
    };
    advance(1, "prompting");
  }

  let probes: LayerProbe[] | undefined;
  if (opts.probes) {
    const sets = setsFor(strongModel.config);
    const { GptModel } = await import("../../kernels/gpt.ts");
    const T = sets.train2.T;
    const model = new GptModel(gpu, strongModel.config, strongModel.params, { batchSize: 64, seqLen: T });
    try {
      const train = await featuresOf(model, sets.train2);
      const test = await featuresOf(model, sets.test);
      probes = [
        ...probeLayers("lp(weak)", train, weak.predictions.train2, test, gt.test),
        ...probeLayers("lp(gt)", train, gt.train2, test, gt.test),
        ...((student.extra as LayerProbe[] | undefined) ?? []),
        ...((ceiling.extra as LayerProbe[] | undefined) ?? []),
      ];
    } finally {
      model.destroy();
    }
    advance(1, "probes");
  }

  return {
    task: opts.task,
    weak: opts.weak,
    strong: opts.strong,
    method: opts.method,
    mode,
    seed: opts.seed,
    n,
    ...selected,
    gap_too_small: gapTooSmall(selected.weak_acc, selected.ceiling_acc, noise),
    gap_noise: noise,
    agreement: agreement(studentTestPred, weakTestPred, gt.test),
    ci: {
      weak_acc: wilson(selected.weak_acc),
      ceiling_acc: wilson(selected.ceiling_acc),
      student_acc: wilson(selected.student_acc),
      pgr: pgrBootstrap(gt.test, weakTestPred, ceilingTestPred, studentTestPred, 1000, opts.seed),
    },
    final: readings(weak.final.testAcc, ceiling.final.testAcc, student.final.testAcc),
    oracle: {
      ...readings(weak.oracle.testAcc, ceiling.oracle.testAcc, student.oracle.testAcc),
      student_step: student.oracle.step,
    },
    selection: "validation",
    alpha_max: alphaMax,
    chain: [opts.weak, ...chain, opts.strong],
    weak_label_acc: weakLabelAcc,
    prompting,
    probes,
    runs,
    cache: { hits: cache?.hits ?? 0, misses: cache?.misses ?? 0 },
    seconds: (performance.now() - started) / 1000,
  };
}
